/** Zoom and pan: screen = image * scale + (tx, ty). */
export interface View {
  scale: number;
  tx: number;
  ty: number;
}

export function fitView(imageW: number, imageH: number, viewW: number, viewH: number, pad = 16): View {
  const scale = Math.min((viewW - 2 * pad) / imageW, (viewH - 2 * pad) / imageH) || 1;
  return { scale, tx: (viewW - imageW * scale) / 2, ty: (viewH - imageH * scale) / 2 };
}

export function toImage(v: View, sx: number, sy: number): [number, number] {
  return [(sx - v.tx) / v.scale, (sy - v.ty) / v.scale];
}

export function zoomAt(v: View, sx: number, sy: number, factor: number, min = 0.01, max = 64): View {
  const scale = Math.min(max, Math.max(min, v.scale * factor));
  const k = scale / v.scale;
  return { scale, tx: sx - (sx - v.tx) * k, ty: sy - (sy - v.ty) * k };
}

export function panBy(v: View, dx: number, dy: number): View {
  return { ...v, tx: v.tx + dx, ty: v.ty + dy };
}
