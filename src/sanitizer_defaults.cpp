// Sanitizer builds only (the Debug preset): undefined behaviour stops the program, as
// -fno-sanitize-recover would, while still letting a test add a suppression through
// UBSAN_OPTIONS (which non-recoverable checks ignore).
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
