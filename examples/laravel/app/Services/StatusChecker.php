<?php

namespace App\Services;

use Illuminate\Contracts\Cache\Repository as Cache;
use Illuminate\Contracts\Filesystem\Factory as Filesystems;
use Illuminate\Database\ConnectionInterface;
use Illuminate\Mail\MailManager;
use Illuminate\Support\Str;
use Throwable;

/**
 * Checks each backing service the app uses and reports "OK" or the error.
 */
class StatusChecker
{
    public const OK = 'OK';

    /** @var ConnectionInterface */
    private $db;
    /** @var Cache */
    private $cache;
    /** @var MailManager */
    private $mail;
    /** @var Filesystems */
    private $files;

    public function __construct(ConnectionInterface $db, Cache $cache, MailManager $mail, Filesystems $files)
    {
        $this->db = $db;
        $this->cache = $cache;
        $this->mail = $mail;
        $this->files = $files;
    }

    /**
     * @return array{database: string, cache: string, mail: string, storage: string}
     */
    public function all(): array
    {
        return [
            'database' => self::attempt(function () {
                $this->db->select('select 1');
            }),
            'cache' => self::attempt(function () {
                $key = 'status-check:'.Str::random(8);
                $this->cache->put($key, 'pong', 10);
                $value = $this->cache->get($key);
                $this->cache->forget($key);
                if ($value !== 'pong') {
                    throw new \RuntimeException('cache did not return the value just stored');
                }
            }),
            'mail' => self::attempt(function () {
                $transport = $this->mail->mailer()->getSwiftMailer()->getTransport();
                // SMTP: open the connection and say EHLO; other transports
                // (log, array) have nothing to reach.
                if ($transport instanceof \Swift_Transport_AbstractSmtpTransport) {
                    $transport->start();
                    $transport->stop();
                }
            }),
            'storage' => self::attempt(function () {
                $adapter = $this->files->disk('s3')->getDriver()->getAdapter();
                if ($adapter instanceof \App\Storage\S3\S3Adapter) {
                    $adapter->getClient()->headBucket();
                } else {
                    $this->files->disk('s3')->files('/');
                }
            }),
        ];
    }

    /**
     * @param  array<string, string>  $report
     */
    public static function healthy(array $report): bool
    {
        return array_filter($report, function ($status) {
            return $status !== self::OK;
        }) === [];
    }

    /**
     * Runs a check; "OK", or the error's message on one line.
     */
    public static function attempt(callable $check): string
    {
        try {
            $check();

            return self::OK;
        } catch (Throwable $e) {
            $message = trim(preg_replace('/\s+/', ' ', $e->getMessage()));

            return $message !== '' ? $message : get_class($e);
        }
    }
}
