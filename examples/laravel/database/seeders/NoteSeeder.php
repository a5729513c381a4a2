<?php

namespace Database\Seeders;

use App\Models\Note;
use Illuminate\Database\Seeder;

/**
 * A few notes to show on the status page. Idempotent: running it again
 * updates the same rows instead of adding new ones.
 */
class NoteSeeder extends Seeder
{
    public const NOTES = [
        'Welcome' => 'This row was inserted by the database seeder.',
        'Migrations' => 'php artisan migrate --force created the notes table.',
        'Services' => 'The status page checks PostgreSQL, Redis, SMTP and S3.',
    ];

    public function run()
    {
        foreach (self::NOTES as $title => $body) {
            Note::query()->updateOrCreate(['title' => $title], ['body' => $body]);
        }
    }
}
