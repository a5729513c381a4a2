<?php

namespace Tests\Unit;

use App\Services\StatusChecker;
use PHPUnit\Framework\TestCase;
use RuntimeException;

class StatusCheckerTest extends TestCase
{
    public function test_a_passing_check_is_ok()
    {
        $this->assertSame('OK', StatusChecker::attempt(function () {
        }));
    }

    public function test_a_failing_check_reports_its_message_on_one_line()
    {
        $this->assertSame('connection refused on port 1', StatusChecker::attempt(function () {
            throw new RuntimeException("connection refused\n  on port 1");
        }));
    }

    public function test_healthy_only_when_every_service_is_ok()
    {
        $this->assertTrue(StatusChecker::healthy(['database' => 'OK', 'cache' => 'OK']));
        $this->assertFalse(StatusChecker::healthy(['database' => 'OK', 'cache' => 'refused']));
    }
}
