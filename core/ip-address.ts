// Textual IP addresses as numbers, for the lookups that file an address under its network.

/** The eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail becomes two groups). */
export function ipv6Groups(address: string): number[] {
  const withoutZone = address.split('%')[0] ?? address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(withoutZone);
  const text = dotted
    ? withoutZone.slice(0, dotted.index) +
      [(Number(dotted[1]) << 8) + Number(dotted[2]), (Number(dotted[3]) << 8) + Number(dotted[4])].map((group) => group.toString(16)).join(':')
    : withoutZone;
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
}
