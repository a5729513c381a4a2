-- A row every developer's database starts with; applied once by devenv
-- (recorded in the devenv_seeds ledger), after the app's migrations.
INSERT INTO notes (title, body, created_at, updated_at)
VALUES ('From seeds/', 'Seeded from seeds/001_welcome_note.sql by devenv.', now(), now())
ON CONFLICT (title) DO NOTHING;
