<?php

use App\Http\Controllers\FileController;
use App\Http\Controllers\MailController;
use App\Http\Controllers\StatusController;
use Illuminate\Support\Facades\Route;

// Liveness/readiness probe: no session, no cookies, no backing service.
Route::get('/health', [StatusController::class, 'health'])->withoutMiddleware('web');

Route::get('/', [StatusController::class, 'index']);
Route::get('/status.json', [StatusController::class, 'index'])->withoutMiddleware('web');

Route::post('/mail', [MailController::class, 'send']);
Route::get('/send-mail', [MailController::class, 'send']);

Route::get('/files', [FileController::class, 'index']);
Route::post('/files', [FileController::class, 'store']);
Route::get('/store-file', [FileController::class, 'store']);
