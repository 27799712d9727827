// Each Lambda's role allows what its stage uses and nothing more (lib/access.ts), read from the
// synthesized IAM policies: tables read or written, the bucket's actions, the queues it sends to,
// SES and the secrets, for the default `ses` deployment.
import type { Template } from 'aws-cdk-lib/assertions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_ACCESS, type FunctionName } from '../../lib/access.js';
import { TABLES, type TableName } from '../../lib/tables.js';
import { actionsOf, logicalIdOf, mentions, roleStatements, synthOutpost, type PolicyStatement, type Synthesized } from './synth.js';

let synthesized: Synthesized;
let template: Template;

beforeAll(() => {
  synthesized = synthOutpost({ domains: 'example.org' });
  template = synthesized.template;
}, 120_000);

function functionOf(name: FunctionName): lambda.IFunction {
  const { pipeline, api } = synthesized.stack;
  const fn = name === 'api' ? api.handler : pipeline[name];
  if (!fn) throw new Error(`no ${name} function in this deployment`);
  return fn.function;
}

const statementsOf = (name: FunctionName): PolicyStatement[] => roleStatements(synthesized, functionOf(name).role);
/** Actions allowed on a resource (by logical id), without any condition narrowing them. */
const unconditionalActions = (name: FunctionName, id: string): Set<string> =>
  new Set(statementsOf(name).filter((statement) => statement.Condition === undefined && mentions(statement, id)).flatMap(actionsOf));
const allActions = (name: FunctionName): Set<string> => new Set(statementsOf(name).flatMap(actionsOf));

const DYNAMO_WRITES = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];
const tableId = (name: TableName) => logicalIdOf(synthesized.stack, synthesized.stack.storage.tables[name]);
const canWrite = (fn: FunctionName, table: TableName) => DYNAMO_WRITES.some((action) => unconditionalActions(fn, tableId(table)).has(action));
const canRead = (fn: FunctionName, table: TableName) => unconditionalActions(fn, tableId(table)).has('dynamodb:GetItem');
const FUNCTIONS = Object.keys(FUNCTION_ACCESS) as FunctionName[];

describe('tables', () => {
  it('the scan function reads the config table (users, settings) but cannot write it: no API key, DKIM key, tenant or user changes', () => {
    expect(canRead('scan', 'config')).toBe(true);
    expect(canWrite('scan', 'config')).toBe(false);
    expect(canWrite('scan', 'messages')).toBe(true);
  });

  it('only the API writes the config table without restriction; deliver, bounce and housekeeping write only its BATV key partition', () => {
    for (const fn of FUNCTIONS) expect(canWrite(fn, 'config'), fn).toBe(fn === 'api');
    for (const fn of ['deliver', 'bounce', 'housekeeping'] as const) {
      const batv = statementsOf(fn).filter((statement) => statement.Condition !== undefined && mentions(statement, tableId('config')));
      expect(batv, fn).toHaveLength(1);
      expect(batv[0]?.Condition).toEqual({ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['BATV'] } });
    }
    expect(statementsOf('scan').some((statement) => statement.Condition !== undefined && mentions(statement, tableId('config')))).toBe(false);
  });

  it('each function reads and writes exactly the tables lib/access.ts gives it', () => {
    for (const fn of FUNCTIONS) {
      const access = FUNCTION_ACCESS[fn].tables;
      for (const table of Object.keys(TABLES) as TableName[]) {
        expect({ fn, table, read: canRead(fn, table), write: canWrite(fn, table) }).toEqual({ fn, table, read: access[table] !== undefined, write: access[table] === 'readWrite' });
      }
    }
    // The API is no queue consumer: it has no use for the idempotency records.
    const idempotency = logicalIdOf(synthesized.stack, synthesized.stack.storage.idempotency);
    expect(unconditionalActions('api', idempotency).size).toBe(0);
    expect(DYNAMO_WRITES.some((action) => unconditionalActions('scan', idempotency).has(action))).toBe(true);
  });
});

describe('the message bucket and the queues', () => {
  const bucketId = () => logicalIdOf(synthesized.stack, synthesized.stack.storage.bucket);
  const bucketActions = (fn: FunctionName) => [...unconditionalActions(fn, bucketId())];

  it('only housekeeping and the API delete messages; the API puts none', () => {
    for (const fn of FUNCTIONS) expect(bucketActions(fn).some((action) => action.startsWith('s3:DeleteObject')), fn).toBe(fn === 'housekeeping' || fn === 'api');
    expect(bucketActions('api')).not.toContain('s3:PutObject');
    expect(bucketActions('scan')).toEqual(expect.arrayContaining(['s3:GetObject*', 's3:PutObject']));
  });

  it('each function sends only to the queues of its next steps', () => {
    const queues = synthesized.stack.storage.queues;
    for (const fn of FUNCTIONS) {
      for (const [name, { queue }] of Object.entries(queues)) {
        const sends = unconditionalActions(fn, logicalIdOf(synthesized.stack, queue)).has('sqs:SendMessage');
        expect({ fn, name, sends }).toEqual({ fn, name, sends: (FUNCTION_ACCESS[fn].sendsTo as readonly string[]).includes(name) });
      }
    }
    // Only the API (redrive) may receive from a dead-letter queue.
    for (const fn of FUNCTIONS) {
      const receivesDeadLetters = Object.values(queues).some(({ deadLetters }) => unconditionalActions(fn, logicalIdOf(synthesized.stack, deadLetters)).has('sqs:ReceiveMessage'));
      expect({ fn, receivesDeadLetters }).toEqual({ fn, receivesDeadLetters: fn === 'api' });
    }
  });
});

describe('SES and secrets', () => {
  const SENDING = ['ses:SendEmail', 'ses:SendRawEmail'];

  it('the API manages SES identities but cannot send mail; only the deliver function sends', () => {
    const api = allActions('api');
    for (const action of SENDING) expect(api.has(action)).toBe(false);
    expect([...api]).toEqual(expect.arrayContaining(['ses:CreateEmailIdentity', 'ses:GetEmailIdentity', 'ses:PutEmailIdentityDkimSigningAttributes', 'ses:DeleteEmailIdentity']));
    for (const fn of FUNCTIONS) {
      expect({ fn, sends: SENDING.some((action) => allActions(fn).has(action)) }).toEqual({ fn, sends: fn === 'deliver' });
      if (fn !== 'api') expect([...allActions(fn)].some((action) => action.includes('EmailIdentity')), fn).toBe(false);
    }
  });

  it('only the API reads the operator token; nobody reads the smarthost credentials in ses mode', () => {
    const { operatorToken, relayCredentials } = synthesized.stack.storage;
    for (const fn of FUNCTIONS) {
      expect({ fn, token: unconditionalActions(fn, logicalIdOf(synthesized.stack, operatorToken)).has('secretsmanager:GetSecretValue') }).toEqual({ fn, token: fn === 'api' });
      expect(unconditionalActions(fn, logicalIdOf(synthesized.stack, relayCredentials)).size, fn).toBe(0);
    }
  });
});
