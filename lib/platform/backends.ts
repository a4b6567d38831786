// The seam's second half: which backends work where the library runs, and why not (lib/backend.ts chooses among
// them). Kept apart from index.ts so that only the modules that choose a backend reach the probes. This is
// node-backends.ts; the browser bundle puts browser-backends.ts in its place.
export * from "./node-backends";
