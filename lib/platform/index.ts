// The seam between the library and where it runs. The library's modules take files, the environment, workers,
// hashing, locks and signals from here, never from a node: built-in, so one source runs under Node and in a browser
// worker. This is node.ts; the browser bundle (lib/web/bundle.ts) puts browser.ts in its place, and
// test/platform.test.ts checks that the two export the same names with the same types.
export * from "./node";
