// The browser bundle's entry (lib/cli/bundle.ts): the library as lib/index.ts exports it, the tfjs it runs on, and
// initPlatform, which a worker awaits once before the first call.
export * from "../index";
export { initPlatform, type PlatformOptions } from "../platform/browser";
export * as tf from "@tensorflow/tfjs";
