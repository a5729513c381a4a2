<?php

namespace Tests\Feature;

use Tests\TestCase;

class HealthTest extends TestCase
{
    public function test_health_answers_ok_without_backing_services()
    {
        // Point every service at a closed port: /health must not care.
        config([
            'database.connections.pgsql.host' => '127.0.0.1',
            'database.connections.pgsql.port' => '1',
            'cache.default' => 'redis',
            'database.redis.cache.port' => '1',
        ]);

        $response = $this->get('/health');

        $response->assertOk();
        $this->assertSame('ok', $response->getContent());
        $response->assertHeaderMissing('Set-Cookie');
    }
}
