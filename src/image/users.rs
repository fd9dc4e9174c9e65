//! `-u USER`: a user given as `UID[:GID]` or by name from a root's
//! /etc/passwd (`name:x:uid:gid:gecos:home:shell`).

/// A user's ids and home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// `UID` (the group is the same number) or `UID:GID`; None for a name.
pub fn numeric(user: &str) -> Option<User> {
    let (uid, gid) = match user.split_once(':') {
        Some((uid, gid)) => (uid.parse().ok()?, gid.parse().ok()?),
        None => {
            let uid = user.parse().ok()?;
            (uid, uid)
        }
    };
    Some(User {
        uid,
        gid,
        home: "/".into(),
    })
}

/// `name`'s entry in the text of an /etc/passwd.
pub fn from_passwd(passwd: &str, name: &str) -> Option<User> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 6 || fields[0] != name {
            return None;
        }
        Some(User {
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
            home: fields[5].to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_by_number_and_by_name() {
        assert_eq!(
            numeric("1000:100"),
            Some(User {
                uid: 1000,
                gid: 100,
                home: "/".into()
            })
        );
        assert_eq!(numeric("33").map(|u| (u.uid, u.gid)), Some((33, 33)));
        assert_eq!(numeric("www-data"), None);
        assert_eq!(numeric("1:x"), None);
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/usr/sbin/nologin\n";
        assert_eq!(
            from_passwd(passwd, "www-data"),
            Some(User {
                uid: 33,
                gid: 33,
                home: "/var/www".into()
            })
        );
        assert_eq!(from_passwd(passwd, "www"), None);
        assert_eq!(from_passwd("broken:x:zero:0::/:/bin/sh\n", "broken"), None);
    }
}
