// Words for workers' presence on the wall and the leader view (wall-workers.js). Data only:
// i18n.js's t() looks them up.
import { addWords } from "./i18n.js";

addWords({
  zh: {
    "presence.on_duty_since": "在岗自",
    "presence.last_fix": "最近定位",
    "presence.stale": "位置过时",
    "presence.track": "今日轨迹",
    "presence.km": "公里",
    "presence.post.A": "A岗",
    "presence.post.B": "B岗",
  },
  en: {
    "presence.on_duty_since": "on duty since",
    "presence.last_fix": "last fix",
    "presence.stale": "position is stale",
    "presence.track": "today's track",
    "presence.km": "km",
    "presence.post.A": "A post",
    "presence.post.B": "B post",
  },
});
