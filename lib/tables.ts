// The DynamoDB tables the CDK app builds are the ones the adapters are tested against on
// DynamoDB Local: one declaration (adapters/aws/tables.ts), so the two cannot drift apart.
export { TABLES, type IndexDefinition, type TableDefinition, type TableName } from '../adapters/aws/tables.js';
