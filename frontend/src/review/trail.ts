/**
 * The images seen before the open one, newest last, for `p`. Every move adds the image left
 * (n, Enter, a link, browser Back/Forward); only a step back with `p` does not. It followed only
 * n/Enter, so after Back/Forward `p` "went" to the open image and did nothing.
 */
export const TRAIL_LIMIT = 200;

export function afterMove(trail: number[], from: number | null, to: number, back: boolean): number[] {
  if (from === null || from === to || back) return trail;
  return [...trail, from].slice(-TRAIL_LIMIT);
}

/** The image `p` opens from `current` (null: none) and the trail once it is open. */
export function stepBack(trail: number[], current: number): { id: number | null; rest: number[] } {
  const rest = [...trail];
  while (rest.length) {
    const id = rest.pop()!;
    if (id !== current) return { id, rest };
  }
  return { id: null, rest };
}
