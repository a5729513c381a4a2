<?php

namespace App\Storage\S3;

use League\Flysystem\Adapter\AbstractAdapter;
use League\Flysystem\Config;

/**
 * Flysystem 1 adapter (the version Laravel 8 uses) over the app's S3 client,
 * so that Storage::disk('s3') works without the AWS SDK.
 */
class S3Adapter extends AbstractAdapter
{
    /** @var Client */
    private $client;
    /** @var string|null */
    private $url;

    public function __construct(Client $client, string $root = '', ?string $url = null)
    {
        $this->client = $client;
        $this->url = $url;
        $this->setPathPrefix($root);
    }

    public function getClient(): Client
    {
        return $this->client;
    }

    /** Used by Laravel's Storage::url(). */
    public function getUrl(string $path): string
    {
        $key = $this->applyPathPrefix($path);
        if ($this->url) {
            return rtrim($this->url, '/').'/'.ltrim($key, '/');
        }

        return $this->client->objectUrl($key);
    }

    public function write($path, $contents, Config $config)
    {
        $this->client->putObject($this->applyPathPrefix($path), $contents, $config->get('mimetype'));

        return ['type' => 'file', 'path' => $path, 'contents' => $contents, 'size' => strlen($contents)];
    }

    public function writeStream($path, $resource, Config $config)
    {
        return $this->write($path, (string) stream_get_contents($resource), $config);
    }

    public function update($path, $contents, Config $config)
    {
        return $this->write($path, $contents, $config);
    }

    public function updateStream($path, $resource, Config $config)
    {
        return $this->writeStream($path, $resource, $config);
    }

    public function rename($path, $newpath)
    {
        return $this->copy($path, $newpath) && $this->delete($path);
    }

    public function copy($path, $newpath)
    {
        $this->client->copyObject($this->applyPathPrefix($path), $this->applyPathPrefix($newpath));

        return true;
    }

    public function delete($path)
    {
        $this->client->deleteObject($this->applyPathPrefix($path));

        return true;
    }

    public function deleteDir($dirname)
    {
        $prefix = rtrim($this->applyPathPrefix($dirname), '/').'/';
        foreach ($this->client->listObjects($prefix)['objects'] as $object) {
            $this->client->deleteObject($object['key']);
        }

        return true;
    }

    public function createDir($dirname, Config $config)
    {
        $this->client->putObject(rtrim($this->applyPathPrefix($dirname), '/').'/', '');

        return ['path' => $dirname, 'type' => 'dir'];
    }

    public function setVisibility($path, $visibility)
    {
        // Object ACLs are not used: access is governed by the bucket policy.
        return ['path' => $path, 'visibility' => $visibility];
    }

    public function has($path)
    {
        if ($this->getMetadata($path) !== false) {
            return true;
        }
        $prefix = rtrim($this->applyPathPrefix($path), '/').'/';

        return $this->client->listObjects($prefix, '/', 1)['objects'] !== [];
    }

    public function read($path)
    {
        try {
            $contents = $this->client->getObject($this->applyPathPrefix($path));
        } catch (S3Exception $e) {
            if ($e->status() === 404) {
                return false;
            }
            throw $e;
        }

        return ['type' => 'file', 'path' => $path, 'contents' => $contents];
    }

    public function readStream($path)
    {
        $read = $this->read($path);
        if ($read === false) {
            return false;
        }
        $stream = fopen('php://temp', 'w+b');
        fwrite($stream, $read['contents']);
        rewind($stream);

        return ['type' => 'file', 'path' => $path, 'stream' => $stream];
    }

    public function listContents($directory = '', $recursive = false)
    {
        $prefix = $this->applyPathPrefix($directory);
        $prefix = $prefix === '' ? '' : rtrim($prefix, '/').'/';
        $listing = $this->client->listObjects($prefix, $recursive ? null : '/');

        $entries = [];
        foreach ($listing['objects'] as $object) {
            $path = $this->removePathPrefix($object['key']);
            if (substr($path, -1) === '/') {
                $entries[] = ['type' => 'dir', 'path' => rtrim($path, '/')];
                continue;
            }
            $entries[] = [
                'type' => 'file',
                'path' => $path,
                'size' => $object['size'],
                'timestamp' => $object['timestamp'],
            ];
        }
        foreach ($listing['prefixes'] as $dir) {
            $entries[] = ['type' => 'dir', 'path' => rtrim($this->removePathPrefix($dir), '/')];
        }

        return $entries;
    }

    public function getMetadata($path)
    {
        $head = $this->client->headObject($this->applyPathPrefix($path));
        if ($head === null) {
            return false;
        }

        return [
            'type' => 'file',
            'path' => $path,
            'size' => $head['size'],
            'timestamp' => $head['timestamp'],
            'mimetype' => $head['mimetype'],
        ];
    }

    public function getSize($path)
    {
        return $this->getMetadata($path);
    }

    public function getMimetype($path)
    {
        return $this->getMetadata($path);
    }

    public function getTimestamp($path)
    {
        return $this->getMetadata($path);
    }

    public function getVisibility($path)
    {
        return ['path' => $path, 'visibility' => 'private'];
    }
}
