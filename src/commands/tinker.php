<?php
// devenv's stand-in for `php artisan tinker` where laravel/tinker is not
// installed (an app without Packagist access): the app booted as artisan
// boots it, then each line evaluated and its value shown. Variables persist
// between lines. Ctrl-D, `exit` or `quit` leaves.

// The autoloader as the app's own artisan loads it: Composer's, or the
// app's own where it has none (an app on Debian's Laravel packages).
foreach (['/vendor/autoload.php', '/bootstrap/autoload.php'] as $loader) {
    if (is_file(getcwd() . $loader)) {
        require getcwd() . $loader;
        break;
    }
}
$app = require getcwd() . '/bootstrap/app.php';
$app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();

$tty = stream_isatty(STDIN);
if ($tty) {
    fwrite(STDERR, "devenv tinker: laravel/tinker is not installed, so this is a plain REPL with the app booted (Ctrl-D quits)\n");
}

function devenv_show($value): void
{
    $flags = JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;
    if (is_object($value)) {
        $data = method_exists($value, 'toArray') ? $value->toArray() : ($value instanceof JsonSerializable ? $value : null);
        echo '=> ', get_class($value), $data === null ? '' : ' ' . json_encode($data, $flags), PHP_EOL;
    } else {
        echo '=> ', json_encode($value, $flags), PHP_EOL;
    }
}

while (true) {
    if ($tty && function_exists('readline')) {
        $line = readline('>>> ');
        if ($line === false) {
            break;
        }
        readline_add_history($line);
    } else {
        $line = fgets(STDIN);
        if ($line === false) {
            break;
        }
    }
    $code = rtrim(trim($line), ';');
    if ($code === '') {
        continue;
    }
    if (in_array($code, ['exit', 'quit'], true)) {
        break;
    }
    try {
        try {
            $devenv_value = eval("return $code;");
        } catch (ParseError $e) {
            $devenv_value = eval("$code;");
        }
        devenv_show($devenv_value);
    } catch (Throwable $e) {
        echo get_class($e), ': ', $e->getMessage(), PHP_EOL;
    }
}
