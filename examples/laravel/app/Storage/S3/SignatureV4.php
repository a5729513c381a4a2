<?php

namespace App\Storage\S3;

use DateTimeImmutable;
use DateTimeInterface;
use DateTimeZone;

/**
 * AWS Signature Version 4 for S3 requests (header-based signing).
 *
 * Pure: no I/O, the clock is passed in, so it can be checked against the
 * examples in AWS's documentation.
 */
final class SignatureV4
{
    public const EMPTY_PAYLOAD_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

    /** @var string */
    private $key;
    /** @var string */
    private $secret;
    /** @var string */
    private $region;
    /** @var string */
    private $service;
    /** @var string|null */
    private $token;

    public function __construct(string $key, string $secret, string $region, string $service = 's3', ?string $token = null)
    {
        $this->key = $key;
        $this->secret = $secret;
        $this->region = $region;
        $this->service = $service;
        $this->token = $token;
    }

    /**
     * Returns $headers plus x-amz-date, x-amz-content-sha256, the session
     * token if any, and Authorization.
     *
     * @param  string  $path  the URI path, already percent-encoded
     * @param  array<string, string>  $query  unencoded query parameters
     * @param  array<string, string>  $headers  must include host
     * @return array<string, string>
     */
    public function sign(string $method, string $path, array $query, array $headers, string $payloadHash, ?DateTimeInterface $now = null): array
    {
        $now = DateTimeImmutable::createFromFormat('U', (string) ($now ?? new DateTimeImmutable())->getTimestamp(), new DateTimeZone('UTC'));
        $amzDate = $now->format('Ymd\THis\Z');
        $date = $now->format('Ymd');

        $headers['x-amz-date'] = $amzDate;
        $headers['x-amz-content-sha256'] = $payloadHash;
        if ($this->token !== null && $this->token !== '') {
            $headers['x-amz-security-token'] = $this->token;
        }

        $canonical = [];
        foreach ($headers as $name => $value) {
            $canonical[strtolower($name)] = preg_replace('/\s+/', ' ', trim((string) $value));
        }
        ksort($canonical, SORT_STRING);
        $signedHeaders = implode(';', array_keys($canonical));

        $canonicalRequest = implode("\n", [
            $method,
            $path === '' ? '/' : $path,
            self::canonicalQuery($query),
            implode('', array_map(function ($name, $value) {
                return $name.':'.$value."\n";
            }, array_keys($canonical), $canonical)),
            $signedHeaders,
            $payloadHash,
        ]);

        $scope = $date.'/'.$this->region.'/'.$this->service.'/aws4_request';
        $stringToSign = implode("\n", [
            'AWS4-HMAC-SHA256',
            $amzDate,
            $scope,
            hash('sha256', $canonicalRequest),
        ]);

        $signingKey = hash_hmac('sha256', $date, 'AWS4'.$this->secret, true);
        $signingKey = hash_hmac('sha256', $this->region, $signingKey, true);
        $signingKey = hash_hmac('sha256', $this->service, $signingKey, true);
        $signingKey = hash_hmac('sha256', 'aws4_request', $signingKey, true);
        $signature = hash_hmac('sha256', $stringToSign, $signingKey);

        $headers['Authorization'] = sprintf(
            'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s',
            $this->key,
            $scope,
            $signedHeaders,
            $signature
        );

        return $headers;
    }

    /**
     * @param  array<string, string>  $query
     */
    public static function canonicalQuery(array $query): string
    {
        $pairs = [];
        foreach ($query as $name => $value) {
            $pairs[rawurlencode((string) $name)] = rawurlencode((string) $value);
        }
        ksort($pairs, SORT_STRING);

        return implode('&', array_map(function ($name, $value) {
            return $name.'='.$value;
        }, array_keys($pairs), $pairs));
    }

    /**
     * Percent-encodes an object key for a URI path, keeping its slashes.
     */
    public static function encodeKey(string $key): string
    {
        return implode('/', array_map('rawurlencode', explode('/', $key)));
    }
}
