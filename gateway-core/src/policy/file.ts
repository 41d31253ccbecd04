// The operator's policy file (cloud config policy.file): YAML or JSON, the same document as
// `braid policy set` and docs/policy.md. Read at cloud start; a bad file stops the start with
// every problem named, rather than running the fleet on a policy nobody wrote.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { parsePolicy, PolicyValidationError, type PolicyInput } from './model.js';

/** The document in `file`, validated (the input form is returned: defaults stay defaults). */
export async function readPolicyFile(file: string): Promise<PolicyInput> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new PolicyValidationError([{ path: '', message: `cannot read: ${(e as Error).message}` }], `policy file ${file}`);
  }
  let doc: unknown;
  try {
    // YAML is a superset of JSON: one parser for both.
    doc = parse(text) ?? {};
  } catch (e) {
    throw new PolicyValidationError([{ path: '', message: `not YAML or JSON: ${(e as Error).message.split('\n')[0]}` }], `policy file ${file}`);
  }
  parsePolicy(doc, `policy file ${file}`);
  return doc as PolicyInput;
}
