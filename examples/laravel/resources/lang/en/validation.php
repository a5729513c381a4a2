<?php

return [
    'email' => 'The :attribute must be a valid email address.',
    'file' => 'The :attribute must be a file.',
    'max' => [
        'file' => 'The :attribute must not be greater than :max kilobytes.',
        'numeric' => 'The :attribute must not be greater than :max.',
        'string' => 'The :attribute must not be greater than :max characters.',
    ],
    'regex' => 'The :attribute format is invalid.',
    'required' => 'The :attribute field is required.',
    'string' => 'The :attribute must be a string.',
    'attributes' => [],
];
