// Writes the JSON schemas of the bench's scenario and result files from their zod schemas (the
// authority): node --import tsx bench/schema/generate.ts. A unit test fails when they drift.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resultJsonSchema } from '../lib/bench-result.js';
import { scenarioJsonSchema } from '../lib/scenario.js';

export const SCHEMA_FILES = {
  result: fileURLToPath(new URL('./result.schema.json', import.meta.url)),
  scenario: fileURLToPath(new URL('./scenario.schema.json', import.meta.url)),
};

export function schemaTexts(): { result: string; scenario: string } {
  return {
    result: `${JSON.stringify(resultJsonSchema(), null, 2)}\n`,
    scenario: `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t = schemaTexts();
  writeFileSync(SCHEMA_FILES.result, t.result);
  writeFileSync(SCHEMA_FILES.scenario, t.scenario);
  process.stdout.write(`wrote ${SCHEMA_FILES.result}\nwrote ${SCHEMA_FILES.scenario}\n`);
}
