<?php

namespace App\Storage\S3;

use RuntimeException;

class S3Exception extends RuntimeException
{
    /** @var string */
    private $awsCode;

    public function __construct(string $message, string $awsCode = '', int $status = 0, ?\Throwable $previous = null)
    {
        parent::__construct($message, $status, $previous);
        $this->awsCode = $awsCode;
    }

    /** The S3 error code, e.g. NoSuchKey, NoSuchBucket; empty if none. */
    public function awsCode(): string
    {
        return $this->awsCode;
    }

    public function status(): int
    {
        return $this->getCode();
    }
}
