<?php

/*
 * Class loading.
 *
 * With dependencies installed by Composer (`composer install`), Composer's
 * autoloader is used (a vendor/ that `composer dump-autoload` alone made is not). Without them, the Laravel 8 framework comes from the
 * distribution's packages (Debian: php-laravel-framework, php-guzzlehttp-guzzle),
 * found on PHP's include_path, and this file maps the app's own namespaces
 * the way composer.json's "autoload" section does.
 */

// Only a complete install: `composer dump-autoload` (which `make:migration`
// and `make:model -m` run) writes vendor/autoload.php without the packages,
// and preferring that would leave the framework unloadable.
if (is_file(__DIR__.'/../vendor/autoload.php') && is_dir(__DIR__.'/../vendor/laravel/framework')) {
    return require __DIR__.'/../vendor/autoload.php';
}

require_once 'Illuminate/autoload.php';

if (stream_resolve_include_path('GuzzleHttp/autoload.php')) {
    require_once 'GuzzleHttp/autoload.php';
}

spl_autoload_register(static function (string $class): void {
    static $prefixes = [
        'App\\' => '/app/',
        'Database\\Seeders\\' => '/database/seeders/',
        'Database\\Factories\\' => '/database/factories/',
        'Tests\\' => '/tests/',
    ];

    foreach ($prefixes as $prefix => $dir) {
        if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
            continue;
        }
        $file = dirname(__DIR__).$dir.str_replace('\\', '/', substr($class, strlen($prefix))).'.php';
        if (is_file($file)) {
            require $file;
        }

        return;
    }
});
