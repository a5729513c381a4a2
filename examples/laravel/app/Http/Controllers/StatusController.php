<?php

namespace App\Http\Controllers;

use App\Models\Note;
use App\Services\StatusChecker;
use Illuminate\Http\Request;
use Throwable;

class StatusController extends Controller
{
    /** Liveness: answers without touching any backing service. */
    public function health()
    {
        return response('ok', 200, ['Content-Type' => 'text/plain']);
    }

    /** Status of each backing service, as a page or as JSON. */
    public function index(Request $request, StatusChecker $checker)
    {
        $report = $checker->all();
        $status = StatusChecker::healthy($report) ? 200 : 503;

        if ($request->is('status.json') || $request->wantsJson()) {
            return response()->json($report, $status);
        }

        try {
            $notes = $report['database'] === StatusChecker::OK ? Note::query()->orderBy('id')->limit(20)->get() : collect();
        } catch (Throwable $e) {
            // Reachable but not migrated yet.
            $notes = collect();
        }

        return response()->view('status', [
            'report' => $report,
            'notes' => $notes,
            'app' => config('app.name'),
            'env' => app()->environment(),
        ], $status);
    }
}
