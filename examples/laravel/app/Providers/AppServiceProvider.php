<?php

namespace App\Providers;

use App\Storage\S3\Client;
use App\Storage\S3\S3Adapter;
use Illuminate\Support\Facades\Storage;
use Illuminate\Support\ServiceProvider;
use League\Flysystem\Filesystem;

class AppServiceProvider extends ServiceProvider
{
    public function register()
    {
        //
    }

    public function boot()
    {
        // Laravel's own `s3` driver needs league/flysystem-aws-s3-v3 and the
        // AWS SDK. Where they are not installed (the distribution's packages
        // lack them), the `s3` driver is served by the app's small S3 client,
        // configured by the same disk settings (AWS_* variables).
        if (! class_exists(\League\Flysystem\AwsS3v3\AwsS3Adapter::class)) {
            Storage::extend('s3', function ($app, array $config) {
                return new Filesystem(
                    new S3Adapter(Client::fromConfig($config), $config['root'] ?? '', $config['url'] ?? null),
                    $config
                );
            });
        }
    }
}
