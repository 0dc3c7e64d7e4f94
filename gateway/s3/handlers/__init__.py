"""One function per S3 operation: parse the request, call one service, render."""
