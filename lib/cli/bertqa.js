#!/usr/bin/env node
// The `bertqa` command: TypeScript sources run through tsx, so there is no build step between editing and running.
require("tsx/cjs");
// Exit once the command is done: the wasm backend's worker threads would otherwise keep the process alive.
require("./main.ts").main(process.argv.slice(2)).then(() => process.exit(process.exitCode ?? 0));
