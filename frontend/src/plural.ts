/** "1 image", "2 images": a count with its noun (plural by a trailing s unless given). */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
