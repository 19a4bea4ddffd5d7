// A strict reader of the Prometheus text format, shared by the metrics tests.

import assert from "node:assert/strict";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  help: string;
  type: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

export function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  assert.match(text, FLOAT, `not a Prometheus float: ${JSON.stringify(text)}`);
  return Number(text);
}

/** One sample line, `name{a="x",b="y"} value`, read char by char so escapes are undone exactly. */
export function parseSample(line: string): Sample {
  const name = METRIC_NAME.exec(line)?.[0];
  assert.ok(name, `no metric name in ${JSON.stringify(line)}`);
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    while (line[i] !== "}") {
      const label = LABEL_NAME.exec(line.slice(i))?.[0];
      assert.ok(label, `bad label name at ${i} in ${JSON.stringify(line)}`);
      i += label.length;
      assert.equal(line.slice(i, i + 2), '="');
      i += 2;
      let value = "";
      while (line[i] !== '"') {
        assert.ok(i < line.length, `unterminated label value in ${JSON.stringify(line)}`);
        if (line[i] === "\\") {
          const c = line[i + 1];
          assert.ok(c === "\\" || c === '"' || c === "n", `bad escape \\${c}`);
          value += c === "n" ? "\n" : c;
          i += 2;
        } else {
          assert.notEqual(line[i], "\n");
          value += line[i++];
        }
      }
      i++;
      assert.ok(!(label in labels), `label ${label} twice`);
      labels[label] = value;
      if (line[i] === ",") i++;
      else assert.equal(line[i], "}", `expected , or } at ${i} in ${JSON.stringify(line)}`);
    }
    i++;
  }
  assert.equal(line[i], " ", `expected one space before the value in ${JSON.stringify(line)}`);
  return { name, labels, value: parseValue(line.slice(i + 1)) };
}

/**
 * Reads a whole exposition back, checking that each family has exactly one HELP then TYPE before its samples,
 * and that a family's samples form one contiguous block.
 */
export function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "exposition must end with a newline");
  const families = new Map<string, Family>();
  let pendingHelp: { name: string; help: string } | null = null;
  let current: string | null = null;
  for (const line of text.slice(0, -1).split("\n")) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (help) {
      assert.ok(!families.has(help[1]) && pendingHelp === null, `duplicate or dangling HELP for ${help[1]}`);
      pendingHelp = { name: help[1], help: help[2].replace(/\\(\\|n)/g, (_, c) => (c === "n" ? "\n" : "\\")) };
      continue;
    }
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      assert.equal(pendingHelp?.name, type[1], `TYPE ${type[1]} without a HELP right before it`);
      families.set(type[1], { help: pendingHelp!.help, type: type[2], samples: [] });
      pendingHelp = null;
      current = type[1];
      continue;
    }
    assert.ok(!line.startsWith("#"), `unexpected comment ${JSON.stringify(line)}`);
    assert.equal(pendingHelp, null, "sample between HELP and TYPE");
    const sample = parseSample(line);
    const family = familyOf(sample.name, families);
    assert.equal(family, current, `sample ${sample.name} outside its family's block (HELP/TYPE missing or misplaced)`);
    families.get(family)!.samples.push(sample);
  }
  return families;
}

export function familyOf(sampleName: string, families: Map<string, Family>): string | undefined {
  const own = families.get(sampleName);
  if (own && own.type !== "histogram") return sampleName;
  const base = /^(.*)_(bucket|sum|count)$/.exec(sampleName)?.[1];
  return base !== undefined && families.get(base)?.type === "histogram" ? base : undefined;
}
