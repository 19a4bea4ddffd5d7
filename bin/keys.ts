// keys: manage API keys in the metering store the server uses (DATA_DIR/meter.kv, or KV_URL).
//
//   deno task keys create --name NAME --credit-gflops X|unlimited [--rate-limit N --window S]
//   deno task keys list [--json]
//   deno task keys revoke ID
//   deno task keys topup ID --gflops X
//
// The secret of a new key is printed once; only its hash is stored.

import { loadConfig } from "../lib/config.ts";
import { ProblemError } from "../lib/errors.ts";
import { CreateKeyBody, type KeyJson, keyJson, TopUpBody } from "../lib/keys.ts";
import { openMeter } from "../lib/metering/mod.ts";

const USAGE = `usage: deno task keys <command>

  create --name NAME --credit-gflops X|unlimited [--rate-limit N] [--window SECONDS]
  list [--json]
  revoke ID
  topup ID --gflops X

The store is DATA_DIR/meter.kv (DATA_DIR defaults to ./data) or KV_URL, as for the server.`;

class UsageError extends Error {}

function parseFlags(argv: string[]): { positional: string[]; flags: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a === "--json") flags.set("json", "true");
    else {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      flags.set(a.slice(2), argv[++i]);
    }
  }
  return { positional, flags };
}

function number(flags: Map<string, string>, name: string): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

function validated<T>(schema: { safeParse(v: unknown): { success: boolean; data?: T; error?: unknown } }, v: unknown) {
  const r = schema.safeParse(v) as { success: true; data: T } | { success: false; error: { issues: unknown[] } };
  if (!r.success) {
    const issue = r.error.issues[0] as { path: PropertyKey[]; message: string };
    throw new UsageError(`${issue.path.join(".") || "value"}: ${issue.message}`);
  }
  return r.data;
}

function table(rows: KeyJson[]): string {
  const head = ["id", "name", "prefix", "credit GFLOPs", "debited GFLOPs", "rate limit", "created", "revoked"];
  const body = rows.map((k) => [
    k.id,
    k.name,
    k.prefix,
    k.credit_remaining_gflops === null ? "unlimited" : String(k.credit_remaining_gflops),
    String(k.debited_gflops),
    `${k.rate_limit.requests}/${k.rate_limit.window_seconds}s`,
    k.created_at,
    k.revoked_at ?? "-",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  return [head, ...body].map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

async function main(argv: string[]): Promise<number> {
  const { positional, flags } = parseFlags(argv);
  const [command, id] = positional;
  if (!command || command === "help" || flags.has("help")) {
    console.log(USAGE);
    return command ? 0 : 1;
  }
  const config = loadConfig();
  const meter = await openMeter(config);
  try {
    switch (command) {
      case "create": {
        const credit = flags.get("credit-gflops");
        if (credit === undefined) throw new UsageError("create needs --credit-gflops X (or unlimited)");
        const requests = number(flags, "rate-limit") ?? config.RATE_LIMIT_REQUESTS;
        const window = number(flags, "window") ?? config.RATE_LIMIT_WINDOW_S;
        const body = validated(CreateKeyBody, {
          name: flags.get("name"),
          credit_gflops: credit === "unlimited" ? null : number(flags, "credit-gflops"),
          rate_limit: { requests, window_seconds: window },
        });
        const { key, secret } = await meter.createKey({
          name: body.name,
          creditGflops: body.credit_gflops,
          rateLimit: { requests: body.rate_limit!.requests, windowSeconds: body.rate_limit!.window_seconds },
        });
        const shown = keyJson((await meter.getKey(key.id))!);
        if (flags.has("json")) console.log(JSON.stringify({ ...shown, secret }));
        else {
          console.log(table([shown]));
          console.log(`\nsecret (shown once, keep it): ${secret}`);
        }
        return 0;
      }
      case "list": {
        const keys = (await meter.listKeys()).map(keyJson);
        console.log(flags.has("json") ? JSON.stringify({ keys }) : keys.length ? table(keys) : "no keys");
        return 0;
      }
      case "revoke": {
        if (!id) throw new UsageError("revoke needs a key ID");
        const k = keyJson(await meter.revokeKey(id));
        console.log(flags.has("json") ? JSON.stringify(k) : table([k]));
        return 0;
      }
      case "topup": {
        if (!id) throw new UsageError("topup needs a key ID");
        const body = validated(TopUpBody, { gflops: number(flags, "gflops") });
        const k = keyJson(await meter.topUp(id, body.gflops));
        console.log(flags.has("json") ? JSON.stringify(k) : table([k]));
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } finally {
    meter.close();
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    if (err instanceof UsageError) console.error(`keys: ${err.message}\n\n${USAGE}`);
    else if (err instanceof ProblemError) console.error(`keys: ${err.message}`);
    else throw err;
    Deno.exit(1);
  }
}
