"""Model providers: OpenAI-compatible chat completions and Anthropic Messages, behind
one provider-neutral interface (`types`), metered per tenant (`metering`) at the
prices of the platform's price table (`prices`). `calls.chat` is the front door."""
