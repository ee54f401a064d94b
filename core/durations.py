"""How long something took or waited, as a person says it (the console's explanations, workflow reminders)."""

from datetime import timedelta


def duration(delta: timedelta) -> str:
    """'1.2 s', '4 min 5 s', '2 h 3 min', '3 days 4 h': how long, as an operator says it."""
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {second} s" if second else f"{minutes} min"
    hours, minute = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minute} min" if minute else f"{hours} h"
    days, hour = divmod(hours, 24)
    return f"{days} days {hour} h" if hour else f"{days} days"
