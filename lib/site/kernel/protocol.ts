// The messages between the kernel (in the page, kernel.ts) and its two workers: the one that runs cells beside the
// library (worker.ts) and the one that compiles and type-checks them (compiler.ts).
import type { CellSyntaxError, CompiledCell } from "./cell";
import type { Completion, TypeDiagnostic } from "./check";

export type MimeBundle = Record<string, string>;

export interface ErrorInfo {
  name: string;
  message: string;
  stack: string;
  user: boolean; // a UserError (the library's one-line errors, ■'s stop): shown as its message only
}

export type FromPage =
  | {
      type: "init";
      bundleUrl: string; // the library bundle, bertqa.js
      danfoUrl: string; // danfojs.js, loaded on the first import of danfojs-node
      base: string; // the folder that serves the repository's files (data/, test/fixtures/, notebooks/)
      env: Record<string, string>; // process.env of the cells and of the library
      stopBuffer?: SharedArrayBuffer; // the stop flag (Int32Array element 0), when the page is cross-origin isolated
    }
  | { type: "run"; id: number; js: string; url: string } // url names the cell in stack traces (sourceURL)
  | { type: "stop" }; // ■ when there is no shared flag

export type ToPage =
  | { type: "ready"; error?: ErrorInfo }
  | { type: "stream"; name: "stdout" | "stderr"; text: string }
  | { type: "display"; data: MimeBundle; displayId?: string; update: boolean }
  | { type: "done"; id: number; value?: MimeBundle }
  | { type: "error"; id: number; error: ErrorInfo };

/** What the kernel asks its compiler; each answer carries the request's id. `pos`: a UTF-16 offset in `code`. */
export type CompilerRequest =
  | { type: "compile"; code: string }
  | { type: "isIncomplete"; code: string }
  | { type: "complete"; code: string; pos: number } // Tab
  | { type: "inspect"; code: string; pos: number }; // Shift-Tab

export type ToCompiler =
  | { type: "init"; typesUrl: string } // bertqa/types.json: the files the type checker reads
  | { type: "commit" } // the last compiled cell ran: later cells are checked against its declarations
  | (CompilerRequest & { id: number });

export type FromCompiler =
  | { type: "ready"; typescriptVersion: string; warning?: string } // warning: cells run, but without type checks
  | { type: "compiled"; id: number; cell: CompiledCell }
  | { type: "syntaxError"; id: number; error: CellSyntaxError }
  | { type: "typeErrors"; id: number; diagnostics: TypeDiagnostic[] }
  | { type: "isIncomplete"; id: number; incomplete: boolean }
  | { type: "complete"; id: number; completion: Completion }
  | { type: "inspect"; id: number; text?: string }; // undefined: nothing known there
