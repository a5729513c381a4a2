<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{ $app }} — status</title>
    <style>
        body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
        table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
        th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
        .ok { color: #176f2c; font-weight: 600; }
        .error { color: #a8200d; }
        code { background: #f3f3f3; padding: 0 .2rem; }
    </style>
</head>
<body>
    <h1>{{ $app }}</h1>
    <p>Environment: <code>{{ $env }}</code></p>

    <h2>Services</h2>
    <table>
        <tr><th>service</th><th>status</th></tr>
        @foreach ($report as $service => $status)
            <tr>
                <td>{{ $service }}</td>
                <td class="{{ $status === 'OK' ? 'ok' : 'error' }}">{{ $status }}</td>
            </tr>
        @endforeach
    </table>

    <h2>Notes</h2>
    @if ($notes->isEmpty())
        <p>No notes yet: run <code>php artisan migrate --force</code> and <code>php artisan db:seed --force</code>.</p>
    @else
        <ul>
            @foreach ($notes as $note)
                <li><strong>{{ $note->title }}</strong> — {{ $note->body }}</li>
            @endforeach
        </ul>
    @endif

    <h2>Try</h2>
    <ul>
        <li><code>GET /status.json</code> — the table above as JSON</li>
        <li><code>GET /health</code> — liveness, touches no service</li>
        <li><code>POST /mail</code> (<code>to</code>, <code>subject</code>) or <code>GET /send-mail?to=…</code></li>
        <li><code>POST /files</code> (<code>name</code>, <code>content</code> or <code>file</code>) or <code>GET /store-file?name=…</code>; <code>GET /files</code> lists them</li>
    </ul>
</body>
</html>
