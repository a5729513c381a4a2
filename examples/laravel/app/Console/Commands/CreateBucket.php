<?php

namespace App\Console\Commands;

use App\Storage\S3\S3Adapter;
use Illuminate\Console\Command;
use Illuminate\Support\Facades\Storage;

class CreateBucket extends Command
{
    protected $signature = 'storage:create-bucket {disk=s3 : The disk whose bucket to create}';

    protected $description = 'Create the bucket of an S3 disk if it does not exist yet';

    public function handle()
    {
        $disk = $this->argument('disk');
        $adapter = Storage::disk($disk)->getDriver()->getAdapter();
        $bucket = config("filesystems.disks.$disk.bucket");

        if ($adapter instanceof S3Adapter) {
            $created = $adapter->getClient()->createBucket();
        } elseif ($adapter instanceof \League\Flysystem\AwsS3v3\AwsS3Adapter) {
            $client = $adapter->getClient();
            $created = ! $client->doesBucketExist($bucket);
            if ($created) {
                $client->createBucket(['Bucket' => $bucket]);
            }
        } else {
            $this->error("disk `$disk` is not an S3 disk");

            return 2;
        }

        $this->info($created ? "Created bucket `$bucket`." : "Bucket `$bucket` already exists.");

        return 0;
    }
}
