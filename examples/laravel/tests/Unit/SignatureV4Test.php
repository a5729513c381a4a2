<?php

namespace Tests\Unit;

use App\Storage\S3\SignatureV4;
use DateTimeImmutable;
use PHPUnit\Framework\TestCase;

/**
 * The examples from AWS's "Signature Version 4 for S3: header-based
 * authentication" documentation.
 */
class SignatureV4Test extends TestCase
{
    private function signer(): SignatureV4
    {
        return new SignatureV4('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'us-east-1');
    }

    private function when(): DateTimeImmutable
    {
        return new DateTimeImmutable('2013-05-24T00:00:00Z');
    }

    public function test_get_object()
    {
        $headers = $this->signer()->sign('GET', '/test.txt', [], [
            'host' => 'examplebucket.s3.amazonaws.com',
            'range' => 'bytes=0-9',
        ], SignatureV4::EMPTY_PAYLOAD_HASH, $this->when());

        $this->assertSame(
            'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, '
            .'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, '
            .'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
            $headers['Authorization']
        );
        $this->assertSame('20130524T000000Z', $headers['x-amz-date']);
    }

    public function test_list_objects()
    {
        $headers = $this->signer()->sign('GET', '/', ['max-keys' => '2', 'prefix' => 'J'], [
            'host' => 'examplebucket.s3.amazonaws.com',
        ], SignatureV4::EMPTY_PAYLOAD_HASH, $this->when());

        $this->assertStringEndsWith(
            'Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
            $headers['Authorization']
        );
    }

    public function test_keys_are_encoded_per_segment()
    {
        $this->assertSame('uploads/a%20b%2Bc.txt', SignatureV4::encodeKey('uploads/a b+c.txt'));
        $this->assertSame('a=1&b=x%2Fy&list-type=2', SignatureV4::canonicalQuery(['list-type' => '2', 'b' => 'x/y', 'a' => '1']));
    }
}
