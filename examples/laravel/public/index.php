<?php

use Illuminate\Contracts\Http\Kernel;
use Illuminate\Http\Request;

define('LARAVEL_START', microtime(true));

if (file_exists($maintenance = __DIR__.'/../storage/framework/maintenance.php')) {
    require $maintenance;
}

try {
    require __DIR__.'/../bootstrap/autoload.php';

    $app = require_once __DIR__.'/../bootstrap/app.php';

    $kernel = $app->make(Kernel::class);
} catch (Throwable $e) {
    // The app cannot boot. With display_errors on (the dev image), PHP
    // would show the error as HTTP 200 and health checks would pass.
    http_response_code(500);
    throw $e;
}

$response = $kernel->handle(
    $request = Request::capture()
)->send();

$kernel->terminate($request, $response);
