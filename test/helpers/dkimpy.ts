// Verifies DKIM signatures with dkimpy (Debian python3-dkim), an implementation independent of
// ours and of mailauth. The public keys are handed over through dkimpy's `dnsfunc`, so no DNS.
// Debian's modules are only under /usr/bin/python3 (the python3 on PATH is another interpreter).
import { spawn } from 'node:child_process';

const SCRIPT = `
import json, logging, sys, io
import dkim
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return records.get(name.rstrip('.').lower(), '').encode()
message = sys.stdin.buffer.read()
stream = io.StringIO()
logger = logging.getLogger('dkimpy')
logger.addHandler(logging.StreamHandler(stream))
logger.setLevel(logging.DEBUG)
results = []
d = dkim.DKIM(message, logger=logger)
count = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
for index in range(count):
    try:
        ok = d.verify(idx=index, dnsfunc=dnsfunc)
    except Exception as error:
        ok = False
        stream.write('exception: %s\\n' % error)
    results.append(bool(ok))
print(json.dumps({'signatures': count, 'results': results, 'log': stream.getvalue()}))
`;

export interface DkimpyResult {
  signatures: number;
  /** One entry per DKIM-Signature, top first. */
  results: boolean[];
  log: string;
}

/** `records` maps `selector._domainkey.domain` (no trailing dot) to the TXT value. */
export function verifyWithDkimpy(message: Buffer, records: Record<string, string>): Promise<DkimpyResult> {
  const lowered = Object.fromEntries(Object.entries(records).map(([name, value]) => [name.replace(/\.$/, '').toLowerCase(), value]));
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', ['-c', SCRIPT, JSON.stringify(lowered)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`dkimpy exited with ${code}: ${Buffer.concat(err).toString()}`));
        return;
      }
      const parsed: unknown = JSON.parse(Buffer.concat(out).toString());
      if (!parsed || typeof parsed !== 'object' || !('results' in parsed)) {
        reject(new Error('dkimpy printed an unexpected answer'));
        return;
      }
      resolve(parsed as DkimpyResult);
    });
    child.stdin.end(message);
  });
}
