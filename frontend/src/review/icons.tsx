/**
 * Small inline SVG icons that ship with the app. Emoji render as empty boxes in a browser without
 * an emoji font (a plain Debian Chromium), so the UI never relies on them.
 */
import type { SVGProps } from "react";

type IconProps = SVGProps<SVGSVGElement> & { title?: string };

function Svg({ title, children, ...rest }: IconProps & { children: React.ReactNode }) {
  return (
    <svg viewBox="0 0 16 16" width="1em" height="1em" fill="none" stroke="currentColor" strokeWidth="1.6"
      strokeLinecap="round" strokeLinejoin="round" className="icon" role={title ? "img" : undefined}
      aria-hidden={title ? undefined : true} {...rest}>
      {title && <title>{title}</title>}
      {children}
    </svg>
  );
}

export function LockIcon(p: IconProps) {
  return (
    <Svg {...p}>
      <rect x="3" y="7" width="10" height="7" rx="1.5" fill="currentColor" stroke="none" />
      <path d="M5 7V5a3 3 0 0 1 6 0v2" />
    </Svg>
  );
}

export function CelebrateIcon(p: IconProps) {
  return (
    <Svg {...p}>
      <path d="M2 14l3.5-9 5.5 5.5z" fill="currentColor" stroke="none" />
      <path d="M9 2v2M13 3l-1.5 1.5M14 7h-2M11 6l1-1" />
    </Svg>
  );
}

export function CheckIcon(p: IconProps) {
  return <Svg {...p}><path d="M3 8.5l3 3 7-7" /></Svg>;
}

export function CrossIcon(p: IconProps) {
  return <Svg {...p}><path d="M4 4l8 8M12 4l-8 8" /></Svg>;
}

export function EyeOffIcon(p: IconProps) {
  return (
    <Svg {...p}>
      <path d="M1.5 8s2.4-4.5 6.5-4.5S14.5 8 14.5 8s-2.4 4.5-6.5 4.5S1.5 8 1.5 8z" />
      <path d="M2 2l12 12" />
    </Svg>
  );
}

export function Spinner(p: IconProps) {
  return (
    <Svg {...p} className="icon spin">
      <path d="M8 1.5a6.5 6.5 0 1 1-6.5 6.5" />
    </Svg>
  );
}

/** The click → SAM tool: a cursor arrow with a plus (points that add to / remove from a mask). */
export function ClickIcon(p: IconProps) {
  return (
    <Svg {...p}>
      <path d="M3 2l8 4.5-3.5 1-1.5 3.5z" fill="currentColor" stroke="none" />
      <path d="M12 10v5M9.5 12.5h5" />
    </Svg>
  );
}
