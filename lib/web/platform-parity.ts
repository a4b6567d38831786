// Compiled, never run (tsc -p lib/web, in test/web.test.ts): the browser side of the seam must give every name the
// Node side gives, with a type the library's modules accept; a name added to node.ts only fails here.
import * as browser from "../platform/browser";
import * as browserBackends from "../platform/browser-backends";
import type * as node from "../platform/node";
import type * as nodeBackends from "../platform/node-backends";

type Seam<N, B> = { [K in keyof N]: K extends keyof B ? (B[K] extends N[K] ? true : ["different type", K]) : ["missing in the browser", K] };
type AllTrue<T> = [Exclude<T[keyof T], true>] extends [never] ? true : Exclude<T[keyof T], true>;

export const files: AllTrue<Seam<typeof node, typeof browser>> = true;
export const backends: AllTrue<Seam<Pick<typeof nodeBackends, "backendHost">, typeof browserBackends>> = true;
