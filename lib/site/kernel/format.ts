// Values as text the way Node shows them (util.inspect, util.format), for the browser kernel's console output and a
// cell's result: the same cell prints the same text under tslab and in the browser. Covers what cells print (numbers,
// strings, arrays, plain objects, Maps, Sets, typed arrays, errors, class instances), not every corner of util.inspect.

const MAX_ITEMS = 100; // util.inspect's maxArrayLength
const MAX_DEPTH = 2; // util.inspect's depth
const LINE_WIDTH = 72; // util.inspect's breakLength is 80; the key and indent take the rest

/** Node's util.inspect(value) for the common cases. */
export function inspect(value: unknown, depth = MAX_DEPTH): string {
  return show(value, depth, new Set(), "");
}

function show(v: unknown, depth: number, seen: Set<object>, indent: string): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "undefined": return "undefined";
    case "string": return quote(v);
    case "number": return Object.is(v, -0) ? "-0" : String(v);
    case "bigint": return `${v}n`;
    case "boolean": return String(v);
    case "symbol": return v.toString();
    case "function": return v.toString().startsWith("class ") ? `[class ${v.name || "(anonymous)"}]` : `[Function: ${v.name || "(anonymous)"}]`;
  }
  const o = v as object;
  if (seen.has(o)) return "[Circular *1]";
  if (o instanceof Error) return o.stack ?? `${o.name}: ${o.message}`;
  if (o instanceof Date) return Number.isNaN(o.getTime()) ? "Invalid Date" : o.toISOString();
  if (o instanceof RegExp) return o.toString();
  if (o instanceof Promise) return "Promise { <pending> }";
  const name = constructorName(o);
  if (depth < 0) return Array.isArray(o) ? "[Array]" : `[${name ?? "Object"}]`;
  seen.add(o);
  try {
    const inner = indent + "  ";
    const item = (x: unknown) => show(x, depth - 1, seen, inner);
    if (Array.isArray(o) || ArrayBuffer.isView(o)) {
      const arr = o as ArrayLike<unknown>;
      const items = Array.from({ length: Math.min(arr.length, MAX_ITEMS) }, (_, i) => item(arr[i]));
      if (arr.length > MAX_ITEMS) items.push(`... ${arr.length - MAX_ITEMS} more item${arr.length - MAX_ITEMS > 1 ? "s" : ""}`);
      const prefix = Array.isArray(o) ? (name === "Array" ? "" : `${name}(${arr.length}) `) : `${name}(${arr.length}) `;
      return prefix + wrap("[", items, "]", indent);
    }
    if (o instanceof Map) {
      const items = [...o].slice(0, MAX_ITEMS).map(([k, x]) => `${item(k)} => ${item(x)}`);
      return `Map(${o.size}) ` + wrap("{", items, "}", indent);
    }
    if (o instanceof Set) return `Set(${o.size}) ` + wrap("{", [...o].slice(0, MAX_ITEMS).map(item), "}", indent);
    const items = Object.keys(o).map((k) => `${key(k)}: ${item((o as Record<string, unknown>)[k])}`);
    const prefix = name === "Object" ? "" : name === undefined ? "[Object: null prototype] " : `${name} `;
    return items.length === 0 ? `${prefix}{}` : prefix + wrap("{", items, "}", indent);
  } finally {
    seen.delete(o);
  }
}

function constructorName(o: object): string | undefined {
  const proto = Object.getPrototypeOf(o) as { constructor?: { name?: string } } | null;
  return proto === null ? undefined : proto.constructor?.name || "Object";
}

/** `[ 1, 2 ]` on one line when short, else one item per line, as util.inspect does. */
function wrap(open: string, items: string[], close: string, indent: string): string {
  if (items.length === 0) return open + close;
  const oneLine = `${open} ${items.join(", ")} ${close}`;
  if (oneLine.length + indent.length <= LINE_WIDTH && !oneLine.includes("\n")) return oneLine;
  return `${open}\n${items.map((s) => `${indent}  ${s}`).join(",\n")}\n${indent}${close}`;
}

function quote(s: string): string {
  const q = !s.includes("'") ? "'" : !s.includes('"') ? '"' : !s.includes("`") ? "`" : "'";
  const escaped = s.replace(/[\\\n\r\t\b\f\v\0]/g, (c) => ({ "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\0": "\\x00" })[c]!);
  return q + (q === "'" ? escaped.replace(/'/g, "\\'") : escaped) + q;
}

function key(k: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(k) ? k : quote(k);
}

/** Node's util.format: console.log's arguments as one line of text (%s %d %i %f %j %o %O %c %% in a first string). */
export function formatArgs(args: unknown[]): string {
  const rest = [...args];
  let head = "";
  if (typeof rest[0] === "string") {
    const fmt = rest.shift() as string;
    head = fmt.replace(/%([sdifjoOc%])/g, (m, c: string) => {
      if (c === "%") return "%";
      if (rest.length === 0) return m;
      const a = rest.shift();
      switch (c) {
        case "s": return typeof a === "string" ? a : inspect(a, 1);
        case "d": case "i": return typeof a === "object" ? "NaN" : String(c === "i" ? Math.trunc(Number(a)) : Number(a));
        case "f": return String(Number(a));
        case "j": return JSON.stringify(a);
        case "c": return "";
        default: return inspect(a, c === "o" ? 4 : MAX_DEPTH);
      }
    });
  }
  const tail = rest.map((a) => (typeof a === "string" ? a : inspect(a)));
  return [...(args.length > 0 && typeof args[0] === "string" ? [head] : []), ...tail].join(" ");
}
