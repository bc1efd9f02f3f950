//! The dashboard's message catalogue: every text a page shows, in English, Bahasa Indonesia and
//! Portuguese (Brazil). Pages never hold literal UI text; they ask [`t`] for a key.
//!
//! The language is the `zapin_lang` cookie (set by the `?lang=` switcher), else the first
//! supported language of `Accept-Language`, else English. Tests check that every key exists in
//! every language and that rendered pages contain no text outside the catalogue.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};

/// A dashboard language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Id,
    Pt,
    /// Test-only rendering: every message is its key in brackets, so that a test can find any
    /// text that did not come from the catalogue. Never chosen from a request.
    Pseudo,
}

/// The cookie holding the chosen language.
pub const LANG_COOKIE: &str = "zapin_lang";

impl Lang {
    /// The languages a user can choose, in the switcher's order.
    pub const CHOICES: [Lang; 3] = [Lang::En, Lang::Id, Lang::Pt];

    /// `en`, `id`, `pt` (and regional forms such as `pt-BR`, `id-ID`, `en-US`).
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            // `in` is the old ISO 639 code for Indonesian, still sent by some Android browsers.
            "id" | "in" => Some(Lang::Id),
            "pt" => Some(Lang::Pt),
            _ => None,
        }
    }

    /// The `lang` attribute of the page.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En | Lang::Pseudo => "en",
            Lang::Id => "id",
            Lang::Pt => "pt-BR",
        }
    }

    /// The switcher's value (`?lang=`).
    pub fn param(self) -> &'static str {
        match self {
            Lang::En | Lang::Pseudo => "en",
            Lang::Id => "id",
            Lang::Pt => "pt",
        }
    }

    /// The language's own name, as the switcher shows it.
    pub fn native_name(self) -> &'static str {
        t(self, "lang.native")
    }

    /// Cookie, else `Accept-Language` (by quality), else English.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)) {
            return lang;
        }
        let mut best: Option<(f32, Lang)> = None;
        for value in headers.get_all(ACCEPT_LANGUAGE) {
            let Ok(value) = value.to_str() else { continue };
            if let Some((q, lang)) = best_of_accept_language(value)
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }
}

/// The supported language of highest quality in one `Accept-Language` value, with its quality
/// (the first one wins a tie; `q=0` means "not this one").
pub fn best_of_accept_language(value: &str) -> Option<(f32, Lang)> {
    let mut best: Option<(f32, Lang)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .filter(|q| q.is_finite())
            .unwrap_or(1.0);
        if let Some(lang) = Lang::parse(tag)
            && q > 0.0
            && best.is_none_or(|(b, _)| q > b)
        {
            best = Some((q, lang));
        }
    }
    best
}

/// The value of cookie `name` in one `Cookie` header value.
pub fn cookie_in<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The value of cookie `name`, if the request has it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_in(v, name))
        .map(str::to_owned)
}

/// The message `key` in `lang`. A key missing from a catalogue shows as `??key??` (and fails
/// the catalogue test) rather than falling back silently.
pub fn t(lang: Lang, key: &'static str) -> &'static str {
    let table = match lang {
        Lang::En => EN,
        Lang::Id => ID,
        Lang::Pt => PT,
        Lang::Pseudo => return pseudo(key),
    };
    match table.iter().find(|(k, _)| *k == key) {
        Some((_, v)) => v,
        None => missing(key),
    }
}

/// [`t`] with `{name}`-style placeholders replaced (values are data, inserted as given: the
/// caller escapes the result for HTML).
pub fn tf(lang: Lang, key: &'static str, args: &[(&str, &str)]) -> String {
    let mut out = t(lang, key).to_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

fn leak(text: String) -> &'static str {
    // Only reached in tests (pseudo language) or for a missing key (a bug the catalogue test
    // catches); the set of keys is finite, so the leak is bounded.
    static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = seen.iter().find(|s| **s == text) {
        return found;
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    seen.push(leaked);
    leaked
}

fn pseudo(key: &str) -> &'static str {
    leak(format!("\u{27e6}{key}\u{27e7}"))
}

fn missing(key: &str) -> &'static str {
    leak(format!("??{key}??"))
}

type Catalogue = &'static [(&'static str, &'static str)];

/// English: the reference catalogue. The onboarding words follow the product's walkthrough.
pub const EN: Catalogue = &[
    ("instances.count_one", "1 instance"),
    ("plans.title", "Plans"),
    ("plans.price", "Price per month"),
    ("plans.limits", "Limits"),
    ("plans.unlimited", "unlimited"),
    ("plans.empty", "No plans yet."),
    ("instance.title", "Instance"),
    ("instance.back", "All instances"),
    ("settings.title", "Settings"),
    ("settings.saved", "Settings saved."),
    ("settings.reject_call", "Reject calls"),
    ("settings.groups_ignore", "Ignore groups"),
    ("settings.always_online", "Always online"),
    ("settings.read_messages", "Mark messages as read"),
    ("settings.read_status", "Mark status updates as seen"),
    ("settings.sync_full_history", "Sync full history"),
    ("settings.msg_call", "Message sent when a call is rejected"),
    ("settings.save", "Save settings"),
    ("webhook.title", "Webhook"),
    ("webhook.none", "No webhook is set for this instance."),
    ("webhook.all_events", "every event"),
    ("webhook.url", "URL"),
    ("webhook.enabled", "enabled"),
    ("webhook.disabled", "disabled"),
    ("webhook.events", "Events"),
    ("webhook.pending", "Deliveries in progress"),
    (
        "webhook.pending_none",
        "Nothing waiting: every event was delivered.",
    ),
    ("webhook.event", "Event"),
    ("webhook.attempts", "Attempts"),
    ("webhook.last_status", "Last status"),
    ("webhook.last_error", "Last error"),
    ("webhook.dead", "Dead-letter queue"),
    ("webhook.dead_none", "No delivery was given up on."),
    ("webhook.reason", "Reason"),
    ("nav.overview", "Overview"),
    ("overview.title", "Overview"),
    ("overview.period", "Period"),
    ("period.24h", "Last 24 hours"),
    ("period.7d", "Last 7 days"),
    ("period.30d", "Last 30 days"),
    ("overview.connected", "Instances connected"),
    ("overview.of", "{n} of {total}"),
    ("overview.sent_today", "Messages sent today"),
    ("overview.sent_month", "Messages sent this month"),
    ("overview.received_today", "Messages received today"),
    ("overview.bots", "Active bots"),
    ("overview.bill", "This month's bill"),
    ("overview.quotas", "Quotas"),
    ("overview.used_of", "{used} of {limit}"),
    ("overview.chart", "Messages and API calls"),
    (
        "overview.chart_label",
        "{messages} messages and {calls} API calls in the period",
    ),
    ("overview.legend_messages", "Messages"),
    ("overview.legend_calls", "API calls"),
    ("overview.no_quotas", "Your plan sets no limits."),
    (
        "overview.operator_note",
        "Usage, quotas and bills are per tenant: see the tenants page.",
    ),
    ("overview.tenants", "Tenants"),
    ("bill.title", "Billing"),
    ("bill.item", "Item"),
    ("bill.used", "Used"),
    ("bill.included", "Included"),
    ("bill.over", "Over"),
    ("bill.amount", "Amount"),
    ("bill.plan", "Plan {plan}"),
    ("bill.total", "Total"),
    ("quota.message_send", "Messages sent"),
    ("quota.api_call", "API calls"),
    ("quota.instance_create", "Instances"),
    ("quota.instance_delete", "Instance deletions"),
    ("quota.bot_create", "Bots"),
    ("window.minute", "per minute"),
    ("window.hour", "per hour"),
    ("window.day", "per day"),
    ("window.month", "per month"),
    ("window.total", "at once"),
    ("lang.native", "English"),
    ("app.brand", "zapin"),
    ("app.title", "zapin dashboard"),
    ("app.skip", "Skip to content"),
    ("nav.main", "Main navigation"),
    ("nav.instances", "Instances"),
    ("nav.keys", "API keys"),
    ("nav.tenants", "Tenants"),
    ("nav.language", "Language"),
    ("nav.signout", "Sign out"),
    ("nav.signed_in_as", "Signed in as {who}"),
    ("nav.operator", "Operator"),
    ("login.title", "Sign in"),
    ("login.email", "E-mail"),
    ("login.password", "Password"),
    ("login.submit", "Sign in"),
    ("login.operator_title", "Operator sign-in"),
    ("login.operator_key", "Operator key"),
    ("login.operator_submit", "Sign in as operator"),
    ("login.failed", "Wrong e-mail or password."),
    ("login.key_failed", "Wrong operator key."),
    (
        "login.limited",
        "Too many attempts. Try again in a few minutes.",
    ),
    (
        "login.unavailable",
        "Sign-in for tenant users needs tenancy, which is not running.",
    ),
    (
        "err.csrf",
        "This form has expired. Reload the page and try again.",
    ),
    ("err.generic", "Something went wrong. Try again."),
    ("err.not_found", "Not found."),
    ("err.forbidden", "You cannot do this."),
    ("err.engine", "The WhatsApp engine is not running."),
    ("err.suspended", "This account is suspended."),
    ("err.quota", "Your plan's limit is reached: {detail}"),
    ("err.title", "Error"),
    ("err.back", "Back"),
    ("instances.title", "Instances"),
    ("instances.count", "{n} instances"),
    ("instances.add", "Add Instance"),
    ("instances.create_title", "Create WhatsApp Instance"),
    ("instances.name", "Instance Name"),
    ("instances.name_placeholder", "my-whatsapp-instance"),
    ("instances.create", "Create Instance"),
    ("instances.cancel", "Cancel"),
    ("instances.close", "Close"),
    (
        "instances.empty",
        "No instances yet. Add one to pair a phone.",
    ),
    ("instances.created", "Created"),
    ("instances.phone", "Phone"),
    ("instances.profile", "Profile name"),
    ("instances.unknown", "not yet known"),
    (
        "instances.name_taken",
        "An instance with this name already exists.",
    ),
    (
        "instances.name_invalid",
        "Invalid name: 1 to 100 characters, without '/' or control characters.",
    ),
    ("instances.created_ok", "Instance {name} created."),
    ("instances.deleted_ok", "Instance {name} deleted."),
    ("status.close", "disconnected"),
    ("status.connecting", "connecting"),
    ("status.open", "connected"),
    ("instances.connect", "Connect"),
    ("instances.connect_title", "Connect {name}"),
    ("instances.tabs", "How to connect"),
    ("instances.tab_qr", "QR code"),
    ("instances.tab_phone", "Phone number"),
    ("instances.generate_qr", "Generate QR Code"),
    ("instances.qr_alt", "QR code to scan with WhatsApp"),
    (
        "instances.qr_help",
        "On your phone open WhatsApp, go to Linked devices and scan this code.",
    ),
    ("instances.expires_in", "Expires in {n} s"),
    ("instances.qr_waiting", "Waiting for a code…"),
    (
        "instances.qr_expired",
        "This code expired; a new one is on its way.",
    ),
    (
        "instances.qr_limit",
        "QR code limit reached. Generate a new one to try again.",
    ),
    ("instances.phone_number", "Phone number with country code"),
    ("instances.phone_placeholder", "5511999999999"),
    ("instances.get_code", "Get pairing code"),
    ("instances.code_label", "Pairing code"),
    (
        "instances.code_help",
        "On your phone: Linked devices, Link with phone number, then type this code.",
    ),
    ("instances.connected", "Connected"),
    (
        "instances.toast_connected",
        "WhatsApp connected successfully!",
    ),
    ("instances.restart", "Restart"),
    ("instances.logout", "Log out"),
    ("instances.delete", "Delete"),
    ("instances.actions", "Actions for {name}"),
    (
        "instances.confirm_delete",
        "Delete instance {name}? This cannot be undone.",
    ),
    ("instances.confirm_logout", "Log out {name} from WhatsApp?"),
    ("instances.confirm_restart", "Restart {name}?"),
    ("instances.not_connected", "This instance is not connected."),
    ("confirm.title", "Please confirm"),
    ("confirm.yes", "Confirm"),
    ("pager.label", "Pages"),
    ("pager.prev", "Previous"),
    ("pager.next", "Next"),
    ("pager.page", "Page {n} of {total}"),
    ("live.lost", "Live updates interrupted; reconnecting…"),
    ("toast.dismiss", "Dismiss"),
    ("tenants.title", "Tenants"),
    ("tenants.name", "Name"),
    ("tenants.plan", "Plan"),
    ("tenants.state", "State"),
    ("tenants.instances", "Instances"),
    ("tenants.active", "active"),
    ("tenants.suspended", "suspended"),
    ("tenants.suspend", "Suspend"),
    ("tenants.resume", "Resume"),
    (
        "tenants.confirm_suspend",
        "Suspend {name}? Its keys and users are refused until resumed.",
    ),
    ("tenants.empty", "No tenants yet."),
    ("keys.title", "API keys"),
    ("keys.create", "Create key"),
    ("keys.prefix", "Prefix"),
    ("keys.created", "Created"),
    ("keys.last_used", "Last used"),
    ("keys.expires", "Expires"),
    ("keys.never", "never"),
    ("keys.revoke", "Revoke"),
    (
        "keys.confirm_revoke",
        "Revoke key {prefix}? Programs using it stop working.",
    ),
    (
        "keys.new",
        "Your new key. Copy it now: it is not shown again.",
    ),
    ("keys.copy", "Copy"),
    ("keys.copied", "Copied"),
    ("keys.empty", "No keys."),
    (
        "keys.operator",
        "The operator key is set in the server's configuration; tenant keys are managed per tenant.",
    ),
];

/// Bahasa Indonesia.
pub const ID: Catalogue = &[
    ("instances.count_one", "1 instans"),
    ("plans.title", "Paket"),
    ("plans.price", "Harga per bulan"),
    ("plans.limits", "Batas"),
    ("plans.unlimited", "tanpa batas"),
    ("plans.empty", "Belum ada paket."),
    ("instance.title", "Instans"),
    ("instance.back", "Semua instans"),
    ("settings.title", "Pengaturan"),
    ("settings.saved", "Pengaturan disimpan."),
    ("settings.reject_call", "Tolak panggilan"),
    ("settings.groups_ignore", "Abaikan grup"),
    ("settings.always_online", "Selalu daring"),
    ("settings.read_messages", "Tandai pesan sudah dibaca"),
    ("settings.read_status", "Tandai status sudah dilihat"),
    ("settings.sync_full_history", "Sinkronkan seluruh riwayat"),
    (
        "settings.msg_call",
        "Pesan yang dikirim saat panggilan ditolak",
    ),
    ("settings.save", "Simpan pengaturan"),
    ("webhook.title", "Webhook"),
    ("webhook.none", "Belum ada webhook untuk instans ini."),
    ("webhook.all_events", "semua peristiwa"),
    ("webhook.url", "URL"),
    ("webhook.enabled", "aktif"),
    ("webhook.disabled", "nonaktif"),
    ("webhook.events", "Peristiwa"),
    ("webhook.pending", "Pengiriman yang sedang berjalan"),
    (
        "webhook.pending_none",
        "Tidak ada yang menunggu: semua peristiwa terkirim.",
    ),
    ("webhook.event", "Peristiwa"),
    ("webhook.attempts", "Percobaan"),
    ("webhook.last_status", "Status terakhir"),
    ("webhook.last_error", "Galat terakhir"),
    ("webhook.dead", "Antrean gagal kirim"),
    ("webhook.dead_none", "Tidak ada pengiriman yang dibatalkan."),
    ("webhook.reason", "Alasan"),
    ("nav.overview", "Ringkasan"),
    ("overview.title", "Ringkasan"),
    ("overview.period", "Periode"),
    ("period.24h", "24 jam terakhir"),
    ("period.7d", "7 hari terakhir"),
    ("period.30d", "30 hari terakhir"),
    ("overview.connected", "Instans terhubung"),
    ("overview.of", "{n} dari {total}"),
    ("overview.sent_today", "Pesan terkirim hari ini"),
    ("overview.sent_month", "Pesan terkirim bulan ini"),
    ("overview.received_today", "Pesan diterima hari ini"),
    ("overview.bots", "Bot aktif"),
    ("overview.bill", "Tagihan bulan ini"),
    ("overview.quotas", "Kuota"),
    ("overview.used_of", "{used} dari {limit}"),
    ("overview.chart", "Pesan dan panggilan API"),
    (
        "overview.chart_label",
        "{messages} pesan dan {calls} panggilan API dalam periode ini",
    ),
    ("overview.legend_messages", "Pesan"),
    ("overview.legend_calls", "Panggilan API"),
    ("overview.no_quotas", "Paket Anda tidak menetapkan batas."),
    (
        "overview.operator_note",
        "Pemakaian, kuota, dan tagihan dihitung per penyewa: lihat halaman penyewa.",
    ),
    ("overview.tenants", "Penyewa"),
    ("bill.title", "Penagihan"),
    ("bill.item", "Item"),
    ("bill.used", "Terpakai"),
    ("bill.included", "Termasuk"),
    ("bill.over", "Kelebihan"),
    ("bill.amount", "Jumlah"),
    ("bill.plan", "Paket {plan}"),
    ("bill.total", "Total"),
    ("quota.message_send", "Pesan terkirim"),
    ("quota.api_call", "Panggilan API"),
    ("quota.instance_create", "Instans"),
    ("quota.instance_delete", "Penghapusan instans"),
    ("quota.bot_create", "Bot"),
    ("window.minute", "per menit"),
    ("window.hour", "per jam"),
    ("window.day", "per hari"),
    ("window.month", "per bulan"),
    ("window.total", "sekaligus"),
    ("lang.native", "Bahasa Indonesia"),
    ("app.brand", "zapin"),
    ("app.title", "Dasbor zapin"),
    ("app.skip", "Lewati ke konten"),
    ("nav.main", "Navigasi utama"),
    ("nav.instances", "Instans"),
    ("nav.keys", "Kunci API"),
    ("nav.tenants", "Penyewa"),
    ("nav.language", "Bahasa"),
    ("nav.signout", "Keluar"),
    ("nav.signed_in_as", "Masuk sebagai {who}"),
    ("nav.operator", "Operator"),
    ("login.title", "Masuk"),
    ("login.email", "E-mail"),
    ("login.password", "Kata sandi"),
    ("login.submit", "Masuk"),
    ("login.operator_title", "Masuk sebagai operator"),
    ("login.operator_key", "Kunci operator"),
    ("login.operator_submit", "Masuk sebagai operator"),
    ("login.failed", "E-mail atau kata sandi salah."),
    ("login.key_failed", "Kunci operator salah."),
    (
        "login.limited",
        "Terlalu banyak percobaan. Coba lagi dalam beberapa menit.",
    ),
    (
        "login.unavailable",
        "Masuk untuk pengguna penyewa memerlukan modul penyewaan, yang tidak berjalan.",
    ),
    (
        "err.csrf",
        "Formulir ini sudah kedaluwarsa. Muat ulang halaman lalu coba lagi.",
    ),
    ("err.generic", "Terjadi kesalahan. Coba lagi."),
    ("err.not_found", "Tidak ditemukan."),
    ("err.forbidden", "Anda tidak dapat melakukan ini."),
    ("err.engine", "Mesin WhatsApp tidak berjalan."),
    ("err.suspended", "Akun ini ditangguhkan."),
    ("err.quota", "Batas paket Anda tercapai: {detail}"),
    ("err.title", "Kesalahan"),
    ("err.back", "Kembali"),
    ("instances.title", "Instans"),
    ("instances.count", "{n} instans"),
    ("instances.add", "Tambah Instans"),
    ("instances.create_title", "Buat Instans WhatsApp"),
    ("instances.name", "Nama Instans"),
    ("instances.name_placeholder", "my-whatsapp-instance"),
    ("instances.create", "Buat Instans"),
    ("instances.cancel", "Batal"),
    ("instances.close", "Tutup"),
    (
        "instances.empty",
        "Belum ada instans. Tambahkan satu untuk menautkan ponsel.",
    ),
    ("instances.created", "Dibuat"),
    ("instances.phone", "Telepon"),
    ("instances.profile", "Nama profil"),
    ("instances.unknown", "belum diketahui"),
    ("instances.name_taken", "Instans dengan nama ini sudah ada."),
    (
        "instances.name_invalid",
        "Nama tidak valid: 1 sampai 100 karakter, tanpa '/' atau karakter kontrol.",
    ),
    ("instances.created_ok", "Instans {name} dibuat."),
    ("instances.deleted_ok", "Instans {name} dihapus."),
    ("status.close", "terputus"),
    ("status.connecting", "menghubungkan"),
    ("status.open", "terhubung"),
    ("instances.connect", "Hubungkan"),
    ("instances.connect_title", "Hubungkan {name}"),
    ("instances.tabs", "Cara menghubungkan"),
    ("instances.tab_qr", "Kode QR"),
    ("instances.tab_phone", "Nomor telepon"),
    ("instances.generate_qr", "Buat Kode QR"),
    ("instances.qr_alt", "Kode QR untuk dipindai dengan WhatsApp"),
    (
        "instances.qr_help",
        "Di ponsel Anda buka WhatsApp, masuk ke Perangkat tertaut lalu pindai kode ini.",
    ),
    ("instances.expires_in", "Kedaluwarsa dalam {n} dtk"),
    ("instances.qr_waiting", "Menunggu kode…"),
    (
        "instances.qr_expired",
        "Kode ini kedaluwarsa; kode baru sedang dibuat.",
    ),
    (
        "instances.qr_limit",
        "Batas kode QR tercapai. Buat kode baru untuk mencoba lagi.",
    ),
    ("instances.phone_number", "Nomor telepon dengan kode negara"),
    ("instances.phone_placeholder", "6281234567890"),
    ("instances.get_code", "Dapatkan kode penautan"),
    ("instances.code_label", "Kode penautan"),
    (
        "instances.code_help",
        "Di ponsel Anda: Perangkat tertaut, Tautkan dengan nomor telepon, lalu ketik kode ini.",
    ),
    ("instances.connected", "Terhubung"),
    ("instances.toast_connected", "WhatsApp berhasil terhubung!"),
    ("instances.restart", "Mulai ulang"),
    ("instances.logout", "Keluar"),
    ("instances.delete", "Hapus"),
    ("instances.actions", "Tindakan untuk {name}"),
    (
        "instances.confirm_delete",
        "Hapus instans {name}? Tindakan ini tidak dapat dibatalkan.",
    ),
    (
        "instances.confirm_logout",
        "Keluarkan {name} dari WhatsApp?",
    ),
    ("instances.confirm_restart", "Mulai ulang {name}?"),
    ("instances.not_connected", "Instans ini tidak terhubung."),
    ("confirm.title", "Harap konfirmasi"),
    ("confirm.yes", "Konfirmasi"),
    ("pager.label", "Halaman"),
    ("pager.prev", "Sebelumnya"),
    ("pager.next", "Berikutnya"),
    ("pager.page", "Halaman {n} dari {total}"),
    (
        "live.lost",
        "Pembaruan langsung terputus; menyambungkan ulang…",
    ),
    ("toast.dismiss", "Tutup"),
    ("tenants.title", "Penyewa"),
    ("tenants.name", "Nama"),
    ("tenants.plan", "Paket"),
    ("tenants.state", "Status"),
    ("tenants.instances", "Instans"),
    ("tenants.active", "aktif"),
    ("tenants.suspended", "ditangguhkan"),
    ("tenants.suspend", "Tangguhkan"),
    ("tenants.resume", "Aktifkan kembali"),
    (
        "tenants.confirm_suspend",
        "Tangguhkan {name}? Kunci dan penggunanya ditolak sampai diaktifkan kembali.",
    ),
    ("tenants.empty", "Belum ada penyewa."),
    ("keys.title", "Kunci API"),
    ("keys.create", "Buat kunci"),
    ("keys.prefix", "Awalan"),
    ("keys.created", "Dibuat"),
    ("keys.last_used", "Terakhir dipakai"),
    ("keys.expires", "Kedaluwarsa"),
    ("keys.never", "tidak pernah"),
    ("keys.revoke", "Cabut"),
    (
        "keys.confirm_revoke",
        "Cabut kunci {prefix}? Program yang memakainya berhenti bekerja.",
    ),
    (
        "keys.new",
        "Kunci baru Anda. Salin sekarang: kunci ini tidak ditampilkan lagi.",
    ),
    ("keys.copy", "Salin"),
    ("keys.copied", "Disalin"),
    ("keys.empty", "Tidak ada kunci."),
    (
        "keys.operator",
        "Kunci operator diatur di konfigurasi server; kunci penyewa dikelola per penyewa.",
    ),
];

/// Portuguese (Brazil).
pub const PT: Catalogue = &[
    ("instances.count_one", "1 instância"),
    ("plans.title", "Planos"),
    ("plans.price", "Preço por mês"),
    ("plans.limits", "Limites"),
    ("plans.unlimited", "ilimitado"),
    ("plans.empty", "Nenhum plano ainda."),
    ("instance.title", "Instância"),
    ("instance.back", "Todas as instâncias"),
    ("settings.title", "Configurações"),
    ("settings.saved", "Configurações salvas."),
    ("settings.reject_call", "Rejeitar chamadas"),
    ("settings.groups_ignore", "Ignorar grupos"),
    ("settings.always_online", "Sempre online"),
    ("settings.read_messages", "Marcar mensagens como lidas"),
    ("settings.read_status", "Marcar status como vistos"),
    (
        "settings.sync_full_history",
        "Sincronizar histórico completo",
    ),
    (
        "settings.msg_call",
        "Mensagem enviada ao rejeitar uma chamada",
    ),
    ("settings.save", "Salvar configurações"),
    ("webhook.title", "Webhook"),
    (
        "webhook.none",
        "Nenhum webhook definido para esta instância.",
    ),
    ("webhook.all_events", "todos os eventos"),
    ("webhook.url", "URL"),
    ("webhook.enabled", "ativado"),
    ("webhook.disabled", "desativado"),
    ("webhook.events", "Eventos"),
    ("webhook.pending", "Entregas em andamento"),
    (
        "webhook.pending_none",
        "Nada aguardando: todos os eventos foram entregues.",
    ),
    ("webhook.event", "Evento"),
    ("webhook.attempts", "Tentativas"),
    ("webhook.last_status", "Último status"),
    ("webhook.last_error", "Último erro"),
    ("webhook.dead", "Fila de mensagens mortas"),
    ("webhook.dead_none", "Nenhuma entrega foi abandonada."),
    ("webhook.reason", "Motivo"),
    ("nav.overview", "Visão geral"),
    ("overview.title", "Visão geral"),
    ("overview.period", "Período"),
    ("period.24h", "Últimas 24 horas"),
    ("period.7d", "Últimos 7 dias"),
    ("period.30d", "Últimos 30 dias"),
    ("overview.connected", "Instâncias conectadas"),
    ("overview.of", "{n} de {total}"),
    ("overview.sent_today", "Mensagens enviadas hoje"),
    ("overview.sent_month", "Mensagens enviadas neste mês"),
    ("overview.received_today", "Mensagens recebidas hoje"),
    ("overview.bots", "Bots ativos"),
    ("overview.bill", "Fatura deste mês"),
    ("overview.quotas", "Cotas"),
    ("overview.used_of", "{used} de {limit}"),
    ("overview.chart", "Mensagens e chamadas de API"),
    (
        "overview.chart_label",
        "{messages} mensagens e {calls} chamadas de API no período",
    ),
    ("overview.legend_messages", "Mensagens"),
    ("overview.legend_calls", "Chamadas de API"),
    ("overview.no_quotas", "Seu plano não define limites."),
    (
        "overview.operator_note",
        "Uso, cotas e faturas são por cliente: veja a página de clientes.",
    ),
    ("overview.tenants", "Clientes"),
    ("bill.title", "Cobrança"),
    ("bill.item", "Item"),
    ("bill.used", "Usado"),
    ("bill.included", "Incluído"),
    ("bill.over", "Excedente"),
    ("bill.amount", "Valor"),
    ("bill.plan", "Plano {plan}"),
    ("bill.total", "Total"),
    ("quota.message_send", "Mensagens enviadas"),
    ("quota.api_call", "Chamadas de API"),
    ("quota.instance_create", "Instâncias"),
    ("quota.instance_delete", "Exclusões de instâncias"),
    ("quota.bot_create", "Bots"),
    ("window.minute", "por minuto"),
    ("window.hour", "por hora"),
    ("window.day", "por dia"),
    ("window.month", "por mês"),
    ("window.total", "ao mesmo tempo"),
    ("lang.native", "Português"),
    ("app.brand", "zapin"),
    ("app.title", "Painel zapin"),
    ("app.skip", "Pular para o conteúdo"),
    ("nav.main", "Navegação principal"),
    ("nav.instances", "Instâncias"),
    ("nav.keys", "Chaves de API"),
    ("nav.tenants", "Clientes"),
    ("nav.language", "Idioma"),
    ("nav.signout", "Sair"),
    ("nav.signed_in_as", "Conectado como {who}"),
    ("nav.operator", "Operador"),
    ("login.title", "Entrar"),
    ("login.email", "E-mail"),
    ("login.password", "Senha"),
    ("login.submit", "Entrar"),
    ("login.operator_title", "Acesso do operador"),
    ("login.operator_key", "Chave do operador"),
    ("login.operator_submit", "Entrar como operador"),
    ("login.failed", "E-mail ou senha incorretos."),
    ("login.key_failed", "Chave do operador incorreta."),
    (
        "login.limited",
        "Muitas tentativas. Tente novamente em alguns minutos.",
    ),
    (
        "login.unavailable",
        "O acesso de usuários de clientes precisa do módulo de clientes, que não está em execução.",
    ),
    (
        "err.csrf",
        "Este formulário expirou. Recarregue a página e tente novamente.",
    ),
    ("err.generic", "Algo deu errado. Tente novamente."),
    ("err.not_found", "Não encontrado."),
    ("err.forbidden", "Você não pode fazer isso."),
    ("err.engine", "O motor do WhatsApp não está em execução."),
    ("err.suspended", "Esta conta está suspensa."),
    ("err.quota", "O limite do seu plano foi atingido: {detail}"),
    ("err.title", "Erro"),
    ("err.back", "Voltar"),
    ("instances.title", "Instâncias"),
    ("instances.count", "{n} instâncias"),
    ("instances.add", "Adicionar Instância"),
    ("instances.create_title", "Criar Instância do WhatsApp"),
    ("instances.name", "Nome da Instância"),
    ("instances.name_placeholder", "my-whatsapp-instance"),
    ("instances.create", "Criar Instância"),
    ("instances.cancel", "Cancelar"),
    ("instances.close", "Fechar"),
    (
        "instances.empty",
        "Nenhuma instância ainda. Adicione uma para parear um celular.",
    ),
    ("instances.created", "Criada em"),
    ("instances.phone", "Telefone"),
    ("instances.profile", "Nome do perfil"),
    ("instances.unknown", "ainda desconhecido"),
    (
        "instances.name_taken",
        "Já existe uma instância com este nome.",
    ),
    (
        "instances.name_invalid",
        "Nome inválido: de 1 a 100 caracteres, sem '/' nem caracteres de controle.",
    ),
    ("instances.created_ok", "Instância {name} criada."),
    ("instances.deleted_ok", "Instância {name} excluída."),
    ("status.close", "desconectada"),
    ("status.connecting", "conectando"),
    ("status.open", "conectada"),
    ("instances.connect", "Conectar"),
    ("instances.connect_title", "Conectar {name}"),
    ("instances.tabs", "Como conectar"),
    ("instances.tab_qr", "QR code"),
    ("instances.tab_phone", "Número de telefone"),
    ("instances.generate_qr", "Gerar QR Code"),
    ("instances.qr_alt", "QR code para escanear com o WhatsApp"),
    (
        "instances.qr_help",
        "No celular abra o WhatsApp, vá em Dispositivos conectados e escaneie este código.",
    ),
    ("instances.expires_in", "Expira em {n} s"),
    ("instances.qr_waiting", "Aguardando um código…"),
    (
        "instances.qr_expired",
        "Este código expirou; um novo está a caminho.",
    ),
    (
        "instances.qr_limit",
        "Limite de QR codes atingido. Gere um novo para tentar de novo.",
    ),
    (
        "instances.phone_number",
        "Número de telefone com código do país",
    ),
    ("instances.phone_placeholder", "5511999999999"),
    ("instances.get_code", "Obter código de pareamento"),
    ("instances.code_label", "Código de pareamento"),
    (
        "instances.code_help",
        "No celular: Dispositivos conectados, Conectar com número de telefone, e digite este código.",
    ),
    ("instances.connected", "Conectado"),
    (
        "instances.toast_connected",
        "WhatsApp conectado com sucesso!",
    ),
    ("instances.restart", "Reiniciar"),
    ("instances.logout", "Desconectar"),
    ("instances.delete", "Excluir"),
    ("instances.actions", "Ações de {name}"),
    (
        "instances.confirm_delete",
        "Excluir a instância {name}? Isso não pode ser desfeito.",
    ),
    (
        "instances.confirm_logout",
        "Desconectar {name} do WhatsApp?",
    ),
    ("instances.confirm_restart", "Reiniciar {name}?"),
    (
        "instances.not_connected",
        "Esta instância não está conectada.",
    ),
    ("confirm.title", "Confirme"),
    ("confirm.yes", "Confirmar"),
    ("pager.label", "Páginas"),
    ("pager.prev", "Anterior"),
    ("pager.next", "Próxima"),
    ("pager.page", "Página {n} de {total}"),
    (
        "live.lost",
        "Atualizações ao vivo interrompidas; reconectando…",
    ),
    ("toast.dismiss", "Fechar"),
    ("tenants.title", "Clientes"),
    ("tenants.name", "Nome"),
    ("tenants.plan", "Plano"),
    ("tenants.state", "Situação"),
    ("tenants.instances", "Instâncias"),
    ("tenants.active", "ativo"),
    ("tenants.suspended", "suspenso"),
    ("tenants.suspend", "Suspender"),
    ("tenants.resume", "Reativar"),
    (
        "tenants.confirm_suspend",
        "Suspender {name}? Suas chaves e usuários serão recusados até a reativação.",
    ),
    ("tenants.empty", "Nenhum cliente ainda."),
    ("keys.title", "Chaves de API"),
    ("keys.create", "Criar chave"),
    ("keys.prefix", "Prefixo"),
    ("keys.created", "Criada em"),
    ("keys.last_used", "Último uso"),
    ("keys.expires", "Expira em"),
    ("keys.never", "nunca"),
    ("keys.revoke", "Revogar"),
    (
        "keys.confirm_revoke",
        "Revogar a chave {prefix}? Os programas que a usam param de funcionar.",
    ),
    (
        "keys.new",
        "Sua nova chave. Copie agora: ela não será mostrada de novo.",
    ),
    ("keys.copy", "Copiar"),
    ("keys.copied", "Copiada"),
    ("keys.empty", "Nenhuma chave."),
    (
        "keys.operator",
        "A chave do operador é definida na configuração do servidor; as chaves de clientes são gerenciadas por cliente.",
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(c: Catalogue) -> BTreeSet<&'static str> {
        c.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn every_key_exists_in_every_language() {
        let en = keys(EN);
        for (name, catalogue) in [("id", ID), ("pt", PT)] {
            let other = keys(catalogue);
            let missing: Vec<_> = en.difference(&other).collect();
            let extra: Vec<_> = other.difference(&en).collect();
            assert!(missing.is_empty(), "{name} lacks {missing:?}");
            assert!(extra.is_empty(), "{name} has keys English lacks: {extra:?}");
        }
    }

    #[test]
    fn no_key_is_defined_twice_or_left_empty() {
        for catalogue in [EN, ID, PT] {
            assert_eq!(keys(catalogue).len(), catalogue.len(), "a duplicate key");
            for (k, v) in catalogue {
                assert!(!v.trim().is_empty(), "{k} is empty");
            }
        }
    }

    #[test]
    fn placeholders_match_across_languages() {
        let holes = |text: &str| -> BTreeSet<String> {
            text.split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(h, _)| h.to_owned()))
                .collect()
        };
        for (key, en) in EN {
            for lang in [Lang::Id, Lang::Pt] {
                assert_eq!(holes(en), holes(t(lang, key)), "{key} in {lang:?}");
            }
        }
    }

    #[test]
    fn the_onboarding_words_are_the_walkthrough_s() {
        for (key, words) in [
            ("instances.add", "Add Instance"),
            ("instances.create_title", "Create WhatsApp Instance"),
            ("instances.name", "Instance Name"),
            ("instances.name_placeholder", "my-whatsapp-instance"),
            ("instances.create", "Create Instance"),
            ("instances.connect", "Connect"),
            ("instances.connect_title", "Connect {name}"),
            ("instances.generate_qr", "Generate QR Code"),
            ("instances.connected", "Connected"),
            (
                "instances.toast_connected",
                "WhatsApp connected successfully!",
            ),
            ("status.close", "disconnected"),
            ("status.connecting", "connecting"),
            ("status.open", "connected"),
        ] {
            assert_eq!(t(Lang::En, key), words);
        }
    }

    #[test]
    fn language_from_cookie_then_accept_language_then_english() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert(
            ACCEPT_LANGUAGE,
            "fr-FR, pt-BR;q=0.8, id;q=0.9"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(Lang::from_headers(&h), Lang::Id);
        h.insert(
            ACCEPT_LANGUAGE,
            "de, pt-BR;q=0.5".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(Lang::from_headers(&h), Lang::Pt);
        h.insert(
            COOKIE,
            "a=b; zapin_lang=en"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert(
            COOKIE,
            "zapin_lang=xx".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(Lang::from_headers(&h), Lang::Pt);
    }
}
