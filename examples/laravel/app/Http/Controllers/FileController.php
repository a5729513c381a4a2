<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Illuminate\Support\Facades\Storage;
use Illuminate\Support\Str;

class FileController extends Controller
{
    private const DIR = 'uploads';

    /** Lists the stored files. */
    public function index()
    {
        $disk = Storage::disk('s3');

        return response()->json([
            'bucket' => config('filesystems.disks.s3.bucket'),
            'files' => array_map(function ($path) use ($disk) {
                return ['key' => $path, 'size' => $disk->size($path)];
            }, $disk->files(self::DIR)),
        ]);
    }

    /** Stores a small file (an upload, a body, or generated text). */
    public function store(Request $request)
    {
        $data = $request->validate([
            'name' => ['nullable', 'string', 'max:100', 'regex:/^[A-Za-z0-9._-]+$/'],
            'content' => ['nullable', 'string', 'max:100000'],
            'file' => ['nullable', 'file', 'max:10240'],
        ]);

        $disk = Storage::disk('s3');
        if ($request->hasFile('file')) {
            $name = $data['name'] ?? $request->file('file')->getClientOriginalName();
            $contents = $request->file('file')->get();
        } else {
            $name = $data['name'] ?? 'note-'.now()->format('Ymd-His').'-'.Str::random(6).'.txt';
            $contents = $data['content'] ?? 'Stored at '.now()->toIso8601String().' by '.config('app.name')."\n";
        }
        $key = self::DIR.'/'.basename($name);
        $disk->put($key, $contents);

        return response()->json([
            'stored' => true,
            'disk' => 's3',
            'bucket' => config('filesystems.disks.s3.bucket'),
            'key' => $key,
            'size' => strlen($contents),
        ], 201);
    }
}
