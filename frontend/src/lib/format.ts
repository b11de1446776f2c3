// Small display helpers. No app imports here.

/** 512 B, 12 KB, 3.4 MB (1024-based, as file managers show them). */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return ''
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`
  const mb = bytes / (1024 * 1024)
  return `${mb < 10 ? mb.toFixed(1).replace(/\.0$/, '') : Math.round(mb)} MB`
}

/**
 * A heading path cut to its last `keep` headings, "… > B > C": the most specific part is what
 * tells passages of one document apart, and a long path would push it out of a one-line list.
 */
export function shortSection(section: string, keep = 2): string {
  const parts = section.split(' > ')
  return parts.length > keep ? ['…', ...parts.slice(-keep)].join(' > ') : section
}
