<?php

namespace Tests\Feature;

use App\Models\Note;
use Illuminate\Foundation\Testing\DatabaseTransactions;
use Illuminate\Support\Facades\Artisan;
use Tests\TestCase;

/**
 * Needs the PostgreSQL server named by DB_HOST, DB_DATABASE, ... (the
 * database is migrated if needed, never wiped; each test rolls back).
 */
class StatusTest extends TestCase
{
    use DatabaseTransactions;

    /** @var bool */
    private static $migrated = false;

    /**
     * Migrates before DatabaseTransactions opens its transaction: PostgreSQL
     * DDL is transactional, so a migration inside it would be rolled back.
     */
    protected function setUpTraits()
    {
        if (! self::$migrated) {
            Artisan::call('migrate', ['--force' => true]);
            self::$migrated = true;
        }

        return parent::setUpTraits();
    }

    public function test_status_reports_the_database_ok()
    {
        $response = $this->getJson('/status.json');

        $response->assertJsonStructure(['database', 'cache', 'mail', 'storage']);
        $response->assertJson(['database' => 'OK', 'cache' => 'OK']);
    }

    public function test_status_page_lists_notes()
    {
        Note::query()->create(['title' => 'From a test', 'body' => 'rolled back afterwards']);

        $response = $this->get('/');

        $response->assertSee('database');
        $response->assertSee('From a test');
    }

    public function test_seeder_is_idempotent()
    {
        $this->seed();
        $this->seed();

        $this->assertSame(
            count(\Database\Seeders\NoteSeeder::NOTES),
            Note::query()->whereIn('title', array_keys(\Database\Seeders\NoteSeeder::NOTES))->count()
        );
    }

    public function test_mail_is_sent_through_the_configured_mailer()
    {
        \Illuminate\Support\Facades\Mail::fake();

        $this->postJson('/mail', ['to' => 'dev@example.com'])
            ->assertOk()
            ->assertJson(['sent' => true, 'to' => 'dev@example.com']);
    }
}
