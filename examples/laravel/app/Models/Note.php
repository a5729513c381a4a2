<?php

namespace App\Models;

use Illuminate\Database\Eloquent\Model;

class Note extends Model
{
    /**
     * @var array<int, string>
     */
    protected $fillable = ['title', 'body'];
}
