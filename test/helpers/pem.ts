// The base64 lines of a PEM: what a test looks for in stored data to prove a key is not there in
// the clear (a fixed prefix such as "MII" also turns up in random base64, about once in a hundred).

/** The lines of `pem` between its BEGIN and END lines, none empty. */
export function pemBase64Lines(pem: string): string[] {
  return pem.split('\n').filter((line) => line.length > 0 && !line.startsWith('-----'));
}
