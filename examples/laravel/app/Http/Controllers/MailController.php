<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Illuminate\Support\Facades\Mail;

class MailController extends Controller
{
    /** Sends a short test mail through the configured mailer. */
    public function send(Request $request)
    {
        $data = $request->validate([
            'to' => ['nullable', 'email', 'max:200'],
            'subject' => ['nullable', 'string', 'max:200'],
        ]);
        $to = $data['to'] ?? 'test@example.com';
        $subject = $data['subject'] ?? 'Hello from '.config('app.name');
        $body = 'Sent at '.now()->toIso8601String().' by '.config('app.name').' ('.app()->environment().').';

        Mail::raw($body, function ($message) use ($to, $subject) {
            $message->to($to)->subject($subject);
        });

        return response()->json([
            'sent' => true,
            'to' => $to,
            'subject' => $subject,
            'mailer' => config('mail.default'),
            'host' => config('mail.default') === 'smtp' ? config('mail.mailers.smtp.host').':'.config('mail.mailers.smtp.port') : null,
        ]);
    }
}
