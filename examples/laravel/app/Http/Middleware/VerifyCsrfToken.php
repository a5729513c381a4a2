<?php

namespace App\Http\Middleware;

use Illuminate\Foundation\Http\Middleware\VerifyCsrfToken as Middleware;

class VerifyCsrfToken extends Middleware
{
    /**
     * The demo endpoints are meant to be driven with curl, without a form.
     *
     * @var array<int, string>
     */
    protected $except = [
        'mail',
        'files',
    ];
}
