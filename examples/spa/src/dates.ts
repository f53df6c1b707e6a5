// GraphQL `Date` is a calendar day ("2026-11-20"). `new Date("2026-11-20")` is midnight UTC,
// which a browser west of Greenwich shows as Nov 19: so the day is built and formatted in UTC,
// and no time zone ever moves it.
const DAY = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeZone: "UTC" });
const INSTANT = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeStyle: "short" });

export function formatDate(day: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!match) return day;
  const [, year, month, date] = match;
  return DAY.format(new Date(Date.UTC(Number(year), Number(month) - 1, Number(date))));
}

// `DateTime` is an instant: shown in the viewer's own time zone.
export function formatInstant(instant: string): string {
  return INSTANT.format(new Date(instant));
}

// Today in the viewer's time zone, as a `Date` (the latest completion date a person can state).
export function today(): string {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}
