<?php

namespace App\Storage\S3;

use GuzzleHttp\Client as Http;
use GuzzleHttp\Exception\GuzzleException;
use Psr\Http\Message\ResponseInterface;

/**
 * A small S3 client: the object and bucket calls this app needs, signed
 * with Signature V4. Works against AWS S3 and S3-compatible servers
 * (MinIO and the like) given an endpoint and path-style addressing.
 */
class Client
{
    /** @var Http */
    private $http;
    /** @var SignatureV4 */
    private $signer;
    /** @var string */
    private $bucket;
    /** @var string */
    private $region;
    /** @var string scheme://host[:port] */
    private $endpoint;
    /** @var bool */
    private $pathStyle;

    public function __construct(SignatureV4 $signer, string $bucket, string $region, ?string $endpoint = null, bool $pathStyle = false, ?Http $http = null)
    {
        $this->signer = $signer;
        $this->bucket = $bucket;
        $this->region = $region;
        $this->endpoint = rtrim($endpoint ?: 'https://s3.'.$region.'.amazonaws.com', '/');
        $this->pathStyle = $pathStyle;
        $this->http = $http ?? new Http([
            'connect_timeout' => 3,
            'timeout' => 15,
            'http_errors' => false,
        ]);
    }

    /**
     * Builds a client from a Laravel `s3` disk configuration.
     *
     * @param  array<string, mixed>  $config
     */
    public static function fromConfig(array $config): self
    {
        $region = (string) ($config['region'] ?? '') ?: 'us-east-1';

        return new self(
            new SignatureV4((string) ($config['key'] ?? ''), (string) ($config['secret'] ?? ''), $region, 's3', $config['token'] ?? null),
            (string) ($config['bucket'] ?? ''),
            $region,
            $config['endpoint'] ?? null,
            (bool) ($config['use_path_style_endpoint'] ?? false)
        );
    }

    public function bucket(): string
    {
        return $this->bucket;
    }

    /** The public URL of an object (not signed). */
    public function objectUrl(string $key): string
    {
        [$base, $path] = $this->location($key);

        return $base.$path;
    }

    public function putObject(string $key, string $body, ?string $contentType = null): void
    {
        $headers = $contentType ? ['content-type' => $contentType] : [];
        $this->send('PUT', $key, [], $headers, $body);
    }

    public function getObject(string $key): string
    {
        return (string) $this->send('GET', $key)->getBody();
    }

    /**
     * @return array{size: int, timestamp: int|null, mimetype: string|null, etag: string|null}|null  null when absent
     */
    public function headObject(string $key): ?array
    {
        try {
            $response = $this->send('HEAD', $key);
        } catch (S3Exception $e) {
            if ($e->status() === 404) {
                return null;
            }
            throw $e;
        }
        $modified = $response->getHeaderLine('Last-Modified');

        return [
            'size' => (int) $response->getHeaderLine('Content-Length'),
            'timestamp' => $modified !== '' ? (strtotime($modified) ?: null) : null,
            'mimetype' => $response->getHeaderLine('Content-Type') ?: null,
            'etag' => trim($response->getHeaderLine('ETag'), '"') ?: null,
        ];
    }

    public function deleteObject(string $key): void
    {
        $this->send('DELETE', $key);
    }

    public function copyObject(string $from, string $to): void
    {
        $this->send('PUT', $to, [], ['x-amz-copy-source' => '/'.$this->bucket.'/'.SignatureV4::encodeKey($from)]);
    }

    /**
     * Lists objects under a prefix (all pages). With a delimiter, keys below
     * the next delimiter are rolled up into prefixes.
     *
     * @return array{objects: array<int, array{key: string, size: int, timestamp: int|null, etag: string|null}>, prefixes: array<int, string>}
     */
    public function listObjects(string $prefix = '', ?string $delimiter = null, ?int $limit = null): array
    {
        $objects = [];
        $prefixes = [];
        $token = null;
        do {
            $query = ['list-type' => '2', 'prefix' => $prefix];
            if ($delimiter !== null) {
                $query['delimiter'] = $delimiter;
            }
            if ($limit !== null) {
                $query['max-keys'] = (string) $limit;
            }
            if ($token !== null) {
                $query['continuation-token'] = $token;
            }
            $xml = $this->xml($this->send('GET', null, $query));
            foreach ($xml->Contents as $item) {
                $objects[] = [
                    'key' => (string) $item->Key,
                    'size' => (int) $item->Size,
                    'timestamp' => strtotime((string) $item->LastModified) ?: null,
                    'etag' => trim((string) $item->ETag, '"') ?: null,
                ];
            }
            foreach ($xml->CommonPrefixes as $item) {
                $prefixes[] = (string) $item->Prefix;
            }
            $token = ((string) $xml->IsTruncated) === 'true' ? (string) $xml->NextContinuationToken : null;
        } while ($token !== null && $token !== '' && ($limit === null || count($objects) < $limit));

        return ['objects' => $objects, 'prefixes' => $prefixes];
    }

    /** Throws an S3Exception when the bucket is missing or not accessible. */
    public function headBucket(): void
    {
        try {
            $this->send('HEAD', null);
        } catch (S3Exception $e) {
            if ($e->status() === 404) {
                throw new S3Exception("bucket `{$this->bucket}` does not exist", 'NoSuchBucket', 404, $e);
            }
            throw $e;
        }
    }

    /**
     * Creates the bucket unless it exists; false when it already did.
     * (S3 in us-east-1 answers 200 to creating a bucket one already owns,
     * so existence is checked first.)
     */
    public function createBucket(): bool
    {
        try {
            $this->headBucket();

            return false;
        } catch (S3Exception $e) {
            if ($e->status() !== 404) {
                throw $e;
            }
        }

        $body = '';
        if ($this->region !== 'us-east-1') {
            $body = '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                .'<LocationConstraint>'.htmlspecialchars($this->region, ENT_XML1).'</LocationConstraint>'
                .'</CreateBucketConfiguration>';
        }
        try {
            $this->send('PUT', null, [], [], $body);
        } catch (S3Exception $e) {
            if ($e->awsCode() === 'BucketAlreadyOwnedByYou') {
                return false;
            }
            throw $e;
        }

        return true;
    }

    /**
     * @return array{0: string, 1: string} base URL and encoded path
     */
    private function location(?string $key): array
    {
        $parts = parse_url($this->endpoint);
        $scheme = $parts['scheme'] ?? 'https';
        $host = ($parts['host'] ?? '').(isset($parts['port']) ? ':'.$parts['port'] : '');
        $keyPath = $key === null ? '' : SignatureV4::encodeKey($key);

        if ($this->pathStyle) {
            return [$scheme.'://'.$host, '/'.rawurlencode($this->bucket).($key === null ? '' : '/'.$keyPath)];
        }

        return [$scheme.'://'.$this->bucket.'.'.$host, '/'.$keyPath];
    }

    /**
     * @param  array<string, string>  $query
     * @param  array<string, string>  $headers
     */
    private function send(string $method, ?string $key, array $query = [], array $headers = [], string $body = ''): ResponseInterface
    {
        if ($this->bucket === '') {
            throw new S3Exception('no bucket configured (AWS_BUCKET)');
        }
        [$base, $path] = $this->location($key);
        $headers['host'] = parse_url($base, PHP_URL_HOST).(parse_url($base, PHP_URL_PORT) ? ':'.parse_url($base, PHP_URL_PORT) : '');
        $headers = $this->signer->sign($method, $path, $query, $headers, hash('sha256', $body));

        $queryString = SignatureV4::canonicalQuery($query);
        try {
            $response = $this->http->request($method, $base.$path.($queryString === '' ? '' : '?'.$queryString), [
                'headers' => $headers,
                'body' => $body,
            ]);
        } catch (GuzzleException $e) {
            // Guzzle appends a pointer to curl's docs; the error itself is enough.
            $message = preg_replace('/ \(see https?:\/\/[^)]*\)/', '', $e->getMessage());
            throw new S3Exception($message, '', 0, $e);
        }

        $status = $response->getStatusCode();
        if ($status >= 300) {
            $code = '';
            $message = 'HTTP '.$status.' from '.$method.' '.$path;
            $text = (string) $response->getBody();
            if ($text !== '' && ($xml = @simplexml_load_string($text)) !== false && isset($xml->Code)) {
                $code = (string) $xml->Code;
                $message = $code.': '.((string) $xml->Message ?: $message);
            }
            throw new S3Exception($message, $code, $status);
        }

        return $response;
    }

    /**
     * @return \SimpleXMLElement
     */
    private function xml(ResponseInterface $response)
    {
        $xml = @simplexml_load_string((string) $response->getBody());
        if ($xml === false) {
            throw new S3Exception('S3 answered with something that is not XML');
        }

        return $xml;
    }
}
