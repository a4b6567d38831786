// The seam between the library and where it runs. The library's modules take files, the environment, workers,
// hashing, locks and signals from here, never from a node: built-in, so one source runs under Node and in a browser
// worker. This is node.ts; the browser bundle (lib/cli/bundle.ts) puts browser.ts in its place, and
// lib/web/platform-parity.ts (compiled by test/web.test.ts) checks that the two give the same names, with types
// that fit.
export * from "./node";
