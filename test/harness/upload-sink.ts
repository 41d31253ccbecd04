// HTTP upload sink for the server namespace: streams each request body into sha256 and answers
// {bytes, sha256}, so an upload is checked end to end without storing it.
//   node --import tsx test/harness/upload-sink.ts HOST PORT
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const host = process.argv[2] ?? '0.0.0.0';
const port = Number(process.argv[3] ?? 8080);

const server = createServer((req, res) => {
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }) + '\n');
  });
  req.on('error', () => res.destroy());
});
server.requestTimeout = 0; // slow carriers: an upload may legitimately take minutes
server.listen(port, host, () => {
  console.log(`upload-sink listening on ${host}:${port}`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
