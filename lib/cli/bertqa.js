#!/usr/bin/env node
// The `bertqa` command: TypeScript sources run through tsx, so there is no build step between editing and running.
require("tsx/cjs");
require("./main.ts").main(process.argv.slice(2));
